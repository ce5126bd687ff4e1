"""The Live page through AppTest from app.py, up to the stream itself: streamlit-webrtc needs a real
server session (AppTest's runtime is a mock), so the stream is tested in a real browser
(tests/app/test_browser_live.py)."""

from __future__ import annotations

import os

from streamlit.testing.v1 import AppTest

from core.serving.public import SETTINGS
from core.video.ice import rtc_configuration
from tests.helpers import APP, TIMEOUT, fresh_app, navigation_from_app_py  # noqa: F401


def live_page() -> AppTest:
    app = AppTest.from_file(APP, default_timeout=TIMEOUT)
    app.switch_page("pages/live.py")
    return app.run()


def test_a_bad_ice_setting_gives_one_clear_line(tiny_registry, monkeypatch) -> None:
    monkeypatch.setenv("FER_STUDIO_ICE_SERVERS", "stun:stun.example.org")
    app = live_page()
    assert not app.exception
    assert [e.value.count("\n") for e in app.error] == [0]
    assert "FER_STUDIO_ICE_SERVERS is not valid JSON" in app.error[0].value


def test_ice_servers_written_as_toml_in_secrets_reach_the_live_page(tiny_registry, monkeypatch) -> None:
    """Community Cloud: FER_STUDIO_ICE_SERVERS as a TOML array of tables in secrets is read as JSON."""
    for name in SETTINGS:  # restored after the test, whatever the secrets copy into the environment
        monkeypatch.setenv(name, os.environ.get(name, ""))
    turn = [{"urls": ["turn:turn.example.org:3478"], "username": "fer", "credential": "secret"}]
    app = AppTest.from_file(APP, default_timeout=TIMEOUT)
    app.secrets["FER_STUDIO_ICE_SERVERS"] = turn
    app.switch_page("pages/train.py").run()
    assert not app.exception
    assert rtc_configuration() == {"iceServers": turn}
