"""Deployment glue run by app.py on every page run: settings from Streamlit secrets, uploads in RAM."""

from __future__ import annotations

import json
import os

import streamlit as st

from core.serving.public import SETTINGS

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
