"""WebRTC connection settings for the live camera: the STUN/TURN servers, and a loopback-only switch.

FER_STUDIO_ICE_SERVERS   the ICE servers, as the JSON list of an RTCConfiguration's iceServers,
                         e.g. [{"urls": ["turn:turn.example.org:3478"], "username": "u",
                         "credential": "p"}]. Unset or empty: none, which is all a browser on
                         the same machine or network needs (no request leaves it). "auto":
                         streamlit-webrtc's choice (Cloudflare, Twilio or Hugging Face TURN
                         credentials from their environment variables, else Google's STUN).
FER_STUDIO_LIVE_LOOPBACK for tests: 1 makes the server offer only 127.0.0.1 and ignore the
                         browser's other addresses (aioice leaves 127.0.0.1 out by default).
"""

from __future__ import annotations

import json
import os
from typing import Any

ICE_SERVERS = "FER_STUDIO_ICE_SERVERS"
LOOPBACK = "FER_STUDIO_LIVE_LOOPBACK"
LOOPBACK_HOSTS = ("127.0.0.1", "::1")


class IceSettingError(ValueError):
    """FER_STUDIO_ICE_SERVERS cannot be used; the message says why in one line."""


def ice_servers() -> list[dict[str, Any]] | None:
    """The ICE servers from FER_STUDIO_ICE_SERVERS: a list (empty for none), or None for "auto".

    Raises IceSettingError when the value is not a JSON list of objects that each have "urls".
    """
    value = os.environ.get(ICE_SERVERS, "").strip()
    if not value:
        return []
    if value.lower() == "auto":
        return None
    try:
        servers = json.loads(value)
    except json.JSONDecodeError as err:
        raise IceSettingError(f"{ICE_SERVERS} is not valid JSON ({err.msg} at character {err.pos})") from None
    if isinstance(servers, dict) and "iceServers" in servers:
        servers = servers["iceServers"]  # a whole RTCConfiguration is fine too
    if not isinstance(servers, list) or not all(isinstance(s, dict) and s.get("urls") for s in servers):
        raise IceSettingError(
            f'{ICE_SERVERS} must be a JSON list of objects with "urls", like [{{"urls": "stun:…"}}]'
        )
    return servers


def rtc_configuration() -> dict[str, Any] | None:
    """The RTCConfiguration for webrtc_streamer (browser and server alike); None lets it choose."""
    servers = ice_servers()
    return None if servers is None else {"iceServers": servers}


def loopback_only() -> bool:
    """Whether FER_STUDIO_LIVE_LOOPBACK asks for loopback-only connections (tests)."""
    return os.environ.get(LOOPBACK, "").strip().lower() in {"1", "on", "true", "yes"}


def use_loopback_only() -> None:
    """Make aioice (aiortc's ICE) gather only 127.0.0.1 and ignore the peer's other candidates.

    aioice leaves loopback out of its host candidates, so a browser on the same machine could
    only connect through the machine's other interfaces; a test server has no business there.
    Idempotent; affects the whole process, so only tests turn it on.
    """
    from aioice import ice

    if getattr(ice, "_fer_loopback", False):
        return

    def loopback_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return ["127.0.0.1"] if use_ipv4 else []

    add_remote = ice.Connection.add_remote_candidate

    async def add_loopback_candidate(self: ice.Connection, remote: ice.Candidate | None) -> None:
        if remote is None or remote.host in LOOPBACK_HOSTS:
            await add_remote(self, remote)

    ice.get_host_addresses = loopback_addresses
    ice.Connection.add_remote_candidate = add_loopback_candidate  # type: ignore[method-assign,assignment]
    ice._fer_loopback = True  # type: ignore[attr-defined]
