"""Public mode's guards on Streamlit's own server parts, on real instances of those parts."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from streamlit.runtime.app_session import AppSession
from streamlit.runtime.memory_uploaded_file_manager import MemoryUploadedFileManager
from streamlit.runtime.stats import StatsManager
from streamlit.runtime.uploaded_file_manager import UploadedFileRec

from ui import deploy


def test_a_sessions_uploads_are_bounded_oldest_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FER_STUDIO_PUBLIC", "1")
    monkeypatch.setenv("FER_STUDIO_MAX_UPLOAD_MB", "1")
    monkeypatch.setenv("FER_STUDIO_MAX_IMAGES", "1")  # bound: 1 MB x (1 + 2) = 3 MB a session
    manager = MemoryUploadedFileManager("/_stcore/upload_file")
    assert deploy._bound_session_uploads(manager) and not deploy._bound_session_uploads(manager)
    for number in range(10):  # 10 files of 0.9 MB no widget uses, as the finding's session sent
        manager.add_file(
            "hoarder", UploadedFileRec(f"f{number}", f"{number}.jpg", "image/jpeg", b"x" * 900_000)
        )
    manager.add_file("neighbour", UploadedFileRec("n", "n.jpg", "image/jpeg", b"y" * 900_000))
    kept = manager.file_storage["hoarder"]
    assert list(kept) == ["f7", "f8", "f9"], "the three newest fit in 3 MB"
    assert [rec.file_id for rec in manager.get_files("neighbour", ["n"])] == ["n"], "others untouched"
    assert manager._total_bytes == 4 * 900_000 and manager._file_count == 4


def test_clear_cache_is_refused_in_public_mode_only(monkeypatch: pytest.MonkeyPatch) -> None:
    cleared: list[str] = []
    monkeypatch.setattr(AppSession, "_handle_clear_cache_request", lambda self: cleared.append("cleared"))
    monkeypatch.setattr(AppSession, "_fer_studio_guarded", False, raising=False)
    assert deploy._refuse_cache_clearing() and not deploy._refuse_cache_clearing(), "patched once"
    session = SimpleNamespace()  # stands for the AppSession: refusing uses nothing of it
    monkeypatch.setenv("FER_STUDIO_PUBLIC", "1")
    AppSession._handle_clear_cache_request(session)
    assert cleared == []
    monkeypatch.setenv("FER_STUDIO_PUBLIC", "0")
    AppSession._handle_clear_cache_request(session)
    assert cleared == ["cleared"], "a studio run locally keeps the menu item"


def test_metrics_give_no_figures_once_closed() -> None:
    stats = StatsManager()
    manager = MemoryUploadedFileManager("/_stcore/upload_file")
    stats.register_provider(manager)
    manager.add_file("s", UploadedFileRec("f", "f.jpg", "image/jpeg", b"z" * 100))
    assert stats.registered_families() and stats.get_stats()
    assert deploy._close_metrics(stats) and not deploy._close_metrics(stats)
    assert list(stats.registered_families()) == [] and stats.get_stats() == {}


def test_public_mode_sets_the_servers_upload_limit_and_gives_it_back(monkeypatch: pytest.MonkeyPatch) -> None:
    from streamlit import config

    configured = int(config.get_option("server.maxUploadSize"))
    monkeypatch.setattr(deploy, "_configured_upload_mb", None)
    monkeypatch.setenv("FER_STUDIO_MAX_UPLOAD_MB", "7")
    try:
        assert deploy._cap_upload_size(public=True)
        assert config.get_option("server.maxUploadSize") == 7, "what the upload route checks, per request"
        assert not deploy._cap_upload_size(public=True)
    finally:
        deploy._cap_upload_size(public=False)
    assert config.get_option("server.maxUploadSize") == configured
