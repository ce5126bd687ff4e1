"""Deployment glue run by app.py on every page run: settings from Streamlit secrets, uploads in RAM,
and public mode's guards on the Streamlit server itself."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import streamlit as st

from core.serving.public import SETTINGS, limits, public_mode
from core.serving.uploads import files_to_drop

_LOGGER = logging.getLogger(__name__)

# Bytes of multipart framing around one uploaded file (boundary, part headers, file name).
_FRAMING = 2**20


def settings_from_secrets() -> list[str]:
    """Copy FER Studio's settings (core.serving.public.SETTINGS) from Streamlit secrets into os.environ.

    Secrets win over variables already set, as they do for Streamlit's own copy of
    top-level secrets into the environment (which skips TOML booleans: here true is 1).
    A TOML array or table (FER_STUDIO_ICE_SERVERS written as TOML) is copied as JSON.
    Returns the names copied; none when the deployment has no secrets.
    """
    if not st.secrets.load_if_toml_exists():
        return []
    copied = []
    for name in SETTINGS:
        if name in st.secrets:
            value = st.secrets[name]
            if isinstance(value, bool):
                os.environ[name] = str(int(value))
            elif isinstance(value, list | dict):
                os.environ[name] = json.dumps(value)
            else:
                os.environ[name] = str(value)
            copied.append(name)
    return copied


def keep_uploads_in_memory() -> int:
    """Keep every upload in the server's memory; returns the new spool size in bytes.

    Streamlit's web server (Starlette) parses an upload into a SpooledTemporaryFile that
    moves to an unlinked file in the system temp folder once it passes 1 MB
    (MultiPartParser.spool_max_size). Raised to the largest upload the server accepts
    (server.maxUploadSize plus framing), the file never rolls over to disk.
    """
    from starlette.formparsers import MultiPartParser

    largest = int(st.get_option("server.maxUploadSize")) * 2**20 + _FRAMING
    MultiPartParser.spool_max_size = max(MultiPartParser.spool_max_size, largest)
    return MultiPartParser.spool_max_size


def guard_public_server() -> list[str]:
    """What public mode changes in the running Streamlit server; returns what it did this time.

    Each step is idempotent (cheap on every page run) and does nothing outside public mode:
    - a browser's "clear cache" message is refused (Streamlit's AppSession clears st.cache_data
      and st.cache_resource for every visitor on any client's request, and has no setting
      against it: client.toolbarMode only hides the menu item);
    - server.maxUploadSize becomes FER_STUDIO_MAX_UPLOAD_MB, so the web server refuses a larger
      file (the uploader's own max_upload_size is checked in the browser only);
    - one session's uploads hold at most Limits.session_upload_bytes (core.serving.uploads);
    - /_stcore/metrics serves no figures (Streamlit 1.67 always serves it; no setting turns it off).
    """
    from streamlit import runtime

    done = [] if _refuse_cache_clearing() is False else ["clear cache refused"]
    public = public_mode()
    if _cap_upload_size(public):
        done.append("server.maxUploadSize")
    if not public:
        return done
    if runtime.exists():
        server = runtime.get_instance()
        if _bound_session_uploads(server.uploaded_file_mgr):
            done.append("session uploads bounded")
        if _close_metrics(server.stats_mgr):
            done.append("metrics closed")
    return done


def _refuse_cache_clearing() -> bool:
    """Patch Streamlit's AppSession once so that, in public mode, "clear cache" does nothing.

    The patch asks public_mode() on each message, so a studio run locally keeps the menu item.
    Returns True when it patched now.
    """
    from streamlit.runtime.app_session import AppSession

    if getattr(AppSession, "_fer_studio_guarded", False):
        return False
    original = AppSession._handle_clear_cache_request

    def handle_clear_cache_request(self: AppSession) -> None:
        if public_mode():
            _LOGGER.warning("refused a visitor's 'clear cache' (public mode: caches are shared)")
            return
        original(self)

    AppSession._handle_clear_cache_request = handle_clear_cache_request  # type: ignore[method-assign]
    AppSession._fer_studio_guarded = True  # type: ignore[attr-defined]
    return True


_configured_upload_mb: int | None = None  # server.maxUploadSize before public mode changed it


def _cap_upload_size(public: bool) -> bool:
    """In public mode make the web server refuse files above FER_STUDIO_MAX_UPLOAD_MB; outside it,
    give back the configured limit if public mode had changed it. True when it changed now."""
    from streamlit import config

    global _configured_upload_mb
    current = int(config.get_option("server.maxUploadSize"))
    if public:
        wanted = limits().max_upload_mb
        if _configured_upload_mb is None:
            _configured_upload_mb = current
    elif _configured_upload_mb is None:
        return False
    else:
        wanted = _configured_upload_mb
    if current == wanted:
        return False
    config.set_option("server.maxUploadSize", wanted, "FER_STUDIO_MAX_UPLOAD_MB (public mode)")
    return True


def _bound_session_uploads(manager: Any) -> bool:
    """Wrap the upload manager's add_file once: a session's oldest files go past its bound."""
    if getattr(manager, "_fer_studio_bounded", False) or not hasattr(manager, "file_storage"):
        return False
    add_file = manager.add_file

    def bounded_add_file(session_id: str, file: Any) -> None:
        add_file(session_id=session_id, file=file)
        held = [(key, len(rec.data)) for key, rec in list(manager.file_storage.get(session_id, {}).items())]
        for key in files_to_drop(held, limits().session_upload_bytes):
            manager.remove_file(session_id, key)

    manager.add_file = bounded_add_file
    manager._fer_studio_bounded = True
    return True


def _close_metrics(stats: Any) -> bool:
    """Make /_stcore/metrics answer with no figures (sessions, caches, uploads); True when done now."""
    if getattr(stats, "_fer_studio_closed", False):
        return False
    stats.registered_families = lambda: []
    stats.get_stats = lambda *args, **kwargs: {}
    stats._fer_studio_closed = True
    return True
