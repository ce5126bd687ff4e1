"""A real public-mode server (`streamlit run app.py`) against what any client can send it.

Visitors are sessions of Streamlit's own websocket protocol (tests/harness/streamlit_client.py):
one evaluates, another sends the "clear cache" message, a third asks for the same evaluation
and gets the first one's; a file over the public upload limit is refused by the web server;
/_stcore/metrics shows no figures. Nothing is timed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from streamlit.proto.Alert_pb2 import Alert

from tests.harness.browser import AppServer, app_server
from tests.harness.streamlit_client import ScriptRun, SessionError, StreamlitSession, Upload
from tests.helpers import write_fer_folders

pytestmark = pytest.mark.slow
TIMEOUT = 240.0
LOGS: dict[str, Path] = {}
EVALUATED = re.compile(r"on fer/val \(\d+ faces\): accuracy .* \(evaluated at (\d\d:\d\d:\d\d) UTC\)")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """The app in public mode, with a tiny dataset as its one data root; its log is LOGS[url]."""
    scratch = tmp_path_factory.mktemp("public-server")
    write_fer_folders(scratch / "data" / "fer", count_per_class=3)
    (scratch / "home").mkdir()
    env = {
        "FER_STUDIO_PUBLIC": "1",
        "FER_STUDIO_TRAINING": "off",
        "FER_STUDIO_DATA_ROOTS": str(scratch / "data"),
        "FER_STUDIO_CACHE": str(scratch / "cache"),
    }
    log = scratch / "streamlit.log"
    with app_server(scratch / "home", log, timeout=TIMEOUT, host=True, env=env) as running:
        LOGS[running.url] = log
        yield running


def alerts(run: ScriptRun, kind: int) -> list[str]:
    return [d.element.alert.body for d in run.drawn if d.kind == "alert" and d.element.alert.format == kind]


def evaluate(session: StreamlitSession) -> str:
    """Open the Models page, press Evaluate (model A on the one dataset, val), return the time shown."""
    opened = session.run(page="models")
    assert opened.status == "FINISHED_SUCCESSFULLY", opened.status
    done = session.click(session.widget_id("button", "Evaluate"))
    assert not [d for d in done.drawn if d.kind == "exception"], "no exception"
    found = [m for body in alerts(done, Alert.SUCCESS) if (m := EVALUATED.search(body))]
    assert found, alerts(done, Alert.SUCCESS) + alerts(done, Alert.ERROR) + alerts(done, Alert.WARNING)
    return found[0].group(1)


def test_a_visitors_clear_cache_clears_nobody_elses_results(server: AppServer) -> None:
    with StreamlitSession(server.url, TIMEOUT) as first:
        evaluated_at = evaluate(first)
    with StreamlitSession(server.url, TIMEOUT) as clearer:
        assert clearer.run().status == "FINISHED_SUCCESSFULLY"
        clearer.clear_cache()
        after = clearer.run()  # the message is handled before this run, in order
        assert after.status == "FINISHED_SUCCESSFULLY"
    with StreamlitSession(server.url, TIMEOUT) as later:
        assert evaluate(later) == evaluated_at, "the same result: it was still in the cache"
    log = LOGS[server.url].read_text(errors="replace")
    assert "refused a visitor's 'clear cache'" in log, "the server refused it (models stay loaded too)"


def test_the_web_server_refuses_a_file_over_the_public_limit(server: AppServer) -> None:
    with StreamlitSession(server.url, TIMEOUT) as visitor:
        visitor.run()
        with pytest.raises(SessionError, match="answered 413"):
            visitor.put_files([Upload("big.jpg", b"\xff" * (10 * 2**20 + 4096), "image/jpeg")])
        assert visitor.put_files([Upload("small.jpg", b"\xff" * 2**20, "image/jpeg")])


def test_metrics_show_nothing_in_public_mode(server: AppServer) -> None:
    with StreamlitSession(server.url, TIMEOUT) as visitor:
        visitor.run()  # a session exists, with its session state and uploads
        answer = requests.get(f"{server.url}/_stcore/metrics", timeout=30, proxies={"http": "", "https": ""})
    figures = [line for line in answer.text.splitlines() if line and not line.startswith("#")]
    assert figures == [], figures[:5]
