"""The Live page through AppTest from app.py, up to the stream itself: streamlit-webrtc needs a real
server session (AppTest's runtime is a mock), so the stream is tested in a real browser
(tests/test_browser_live.py)."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest
from test_app import APP, TIMEOUT, fresh_app, navigation_from_app_py  # noqa: F401


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
