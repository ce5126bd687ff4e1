"""One visitor's session of a running Streamlit app, over Streamlit's own websocket protocol.

It does what the browser frontend does, read off streamlit's server side
(web/server/starlette/starlette_websocket.py and starlette_routes.py, runtime/app_session.py):

- opens `/_stcore/stream` with the "streamlit" subprotocol and asks for a script run
  (BackMsg `rerun_script` with the widget states);
- uploads files the way `st.file_uploader` does: BackMsg `file_urls_request`, the answer's
  upload URL gets a multipart PUT (with the XSRF cookie from `/_stcore/health` and the same
  token in `X-Xsrftoken`), then a rerun with the uploader's new state;
- keeps every element the server draws (ForwardMsg `delta`) with the time it arrived,
  until `script_finished`;
- opens another page of an `st.navigation` app by its URL path (`page`), clicks buttons
  (a trigger value), and sends the "clear cache" message of the app menu's item.

No browser, so it measures the server: a protocol session costs the client almost nothing.
Lives in tests/ rather than core/ because it needs streamlit's protobuf classes, and
importing them imports streamlit.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import requests
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.Common_pb2 import FileUploaderState, FileURLs, UploadedFileInfo
from streamlit.proto.Element_pb2 import Element
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.sync.client import ClientConnection, connect

XSRF_COOKIE = "_streamlit_xsrf"


class SessionError(RuntimeError):
    """The app did not do what a browser session expects (closed, refused, or too slow)."""


@dataclass(frozen=True)
class Drawn:
    """One element the server drew: when it arrived (time.monotonic()), where, and what."""

    at: float
    path: tuple[int, ...]
    element: Element

    @property
    def kind(self) -> str:
        return self.element.WhichOneof("type") or ""


@dataclass
class ScriptRun:
    """What one script run drew, in arrival order, and how it ended."""

    started: float  # when it was asked for (for an upload: when the upload began)
    requested: float | None = None  # when the rerun was asked for (for an upload: after the files went up)
    drawn: list[Drawn] = field(default_factory=list)
    finished: float | None = None
    status: str = ""


@dataclass(frozen=True)
class Upload:
    """A file to put into an `st.file_uploader`."""

    name: str
    data: bytes
    mime: str = "image/png"


class StreamlitSession:
    """A session of the app at `url` (e.g. http://127.0.0.1:8501), as a browser tab would hold it.

    Use as a context manager; every wait ends by `timeout` seconds with SessionError.
    """

    def __init__(self, url: str, timeout: float = 120.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session_id = ""
        self.page_hash = ""
        self.widgets: dict[str, Element] = {}  # the last run's widgets by their id
        self._http = requests.Session()
        self._http.trust_env = False  # loopback only: no proxy from the environment
        self._ws: ClientConnection | None = None
        self._pending: list[ForwardMsg] = []

    def __enter__(self) -> StreamlitSession:
        self.open()
        return self

    def open(self) -> None:
        """Connect as the page does: read /_stcore/health (the XSRF cookie), open the websocket."""
        health = self._http.get(f"{self.url}/_stcore/health", timeout=self.timeout)
        health.raise_for_status()  # also sets the XSRF cookie, as it does for the browser
        self._ws = connect(
            self.url.replace("http", "ws", 1) + "/_stcore/stream",
            subprotocols=["streamlit"],  # type: ignore[list-item]
            proxy=None,
            open_timeout=self.timeout,
            max_size=2**27,
            compression=None,
        )

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the websocket, as closing the tab does."""
        if self._ws is not None:
            self._ws.close()
            self._ws = None
        self._http.close()

    def run(self, widgets: Iterable[WidgetState] = (), query: str = "", page: str = "") -> ScriptRun:
        """Ask for a script run with these widget states and collect what it draws until it finishes.

        `page` is a page's URL path (e.g. "models"); without it the current page runs again.
        """
        message = BackMsg()
        state = message.rerun_script
        state.query_string = query
        if page:
            state.page_name = page
        else:
            state.page_script_hash = self.page_hash
        state.widget_states.widgets.extend(widgets)
        started = time.monotonic()
        self._send(message)
        return self._collect(ScriptRun(started, started), started + self.timeout)

    def click(self, widget_id: str, widgets: Iterable[WidgetState] = ()) -> ScriptRun:
        """Click the button (or form submit button) `widget_id` and collect the rerun."""
        return self.run([*widgets, WidgetState(id=widget_id, trigger_value=True)])

    def clear_cache(self) -> None:
        """Send the "clear cache" message, as the app menu's item (or pressing C) does."""
        message = BackMsg()
        message.clear_cache = True
        self._send(message)

    def upload(self, widget_id: str, files: Sequence[Upload]) -> ScriptRun:
        """Put files into the file uploader `widget_id` and collect the rerun they cause.

        The run's `started` is when the upload began (the visitor picked the files).
        """
        started = time.monotonic()
        infos = self.put_files(files, started + self.timeout)
        state = WidgetState(
            id=widget_id, file_uploader_state_value=FileUploaderState(uploaded_file_info=infos)
        )
        run = self.run([state])
        run.started = started
        return run

    def put_files(self, files: Sequence[Upload], deadline: float | None = None) -> list[UploadedFileInfo]:
        """Send files to the server as an uploader does, without telling any widget (no rerun)."""
        deadline = deadline or time.monotonic() + self.timeout
        request = BackMsg()
        request.file_urls_request.request_id = uuid.uuid4().hex
        request.file_urls_request.session_id = self.session_id
        request.file_urls_request.file_names.extend(f.name for f in files)
        self._send(request)
        response = self._wait_for(
            lambda m: (
                m.WhichOneof("type") == "file_urls_response"
                and m.file_urls_response.response_id == request.file_urls_request.request_id
            ),
            deadline,
        ).file_urls_response
        if response.error_msg:
            raise SessionError(f"upload refused: {response.error_msg}")
        token = self._http.cookies.get(XSRF_COOKIE) or ""
        infos = []
        for item, urls in zip(files, response.file_urls, strict=True):
            answer = self._http.put(
                self.url + urls.upload_url,
                files={"file": (item.name, item.data, item.mime)},
                headers={"X-Xsrftoken": token},
                timeout=max(1.0, deadline - time.monotonic()),
            )
            if answer.status_code >= 300:
                raise SessionError(
                    f"upload of {item.name} answered {answer.status_code}: {answer.text[:200]}"
                )
            infos.append(
                UploadedFileInfo(
                    name=item.name,
                    size=len(item.data),
                    file_id=urls.file_id,
                    file_urls=FileURLs(
                        file_id=urls.file_id, upload_url=urls.upload_url, delete_url=urls.delete_url
                    ),
                )
            )
        return infos

    def get(self, path: str) -> bytes:
        """An HTTP GET of a path the page named (e.g. a download's media URL), as the browser would."""
        answer = self._http.get(self.url + path, timeout=self.timeout)
        if answer.status_code >= 300:
            raise SessionError(f"GET {path} answered {answer.status_code}")
        return answer.content

    def _send(self, message: BackMsg) -> None:
        if self._ws is None:
            raise SessionError("the session is not open")
        self._ws.send(message.SerializeToString())

    def _receive(self, deadline: float) -> ForwardMsg:
        if self._pending:
            return self._pending.pop(0)
        if self._ws is None:
            raise SessionError("the session is not open")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise SessionError(f"no answer within {self.timeout:.0f} s")
        try:
            data = self._ws.recv(timeout=remaining)
        except TimeoutError as error:
            raise SessionError(f"no answer within {self.timeout:.0f} s") from error
        except Exception as error:  # the server closed the connection, or it broke
            raise SessionError(f"the connection ended: {error!r}") from error
        message = ForwardMsg()
        message.ParseFromString(data if isinstance(data, bytes) else data.encode())
        return message

    def _wait_for(self, wanted: Callable[[ForwardMsg], bool], deadline: float) -> ForwardMsg:
        """The first message `wanted` accepts; others wait in order for the next reader."""
        skipped: list[ForwardMsg] = []
        try:
            while True:
                message = self._receive(deadline)
                if wanted(message):
                    return message
                skipped.append(message)
        finally:
            self._pending = skipped + self._pending

    def _collect(self, run: ScriptRun, deadline: float) -> ScriptRun:
        begun = False  # a script_finished before our run's new_session belongs to an earlier run
        while True:
            message = self._receive(deadline)
            kind = message.WhichOneof("type")
            if kind == "new_session":
                begun = True
                if message.new_session.initialize.session_id:
                    self.session_id = message.new_session.initialize.session_id
            elif kind == "navigation" and message.navigation.page_script_hash:
                self.page_hash = message.navigation.page_script_hash
            elif kind == "delta" and message.delta.WhichOneof("type") == "new_element":
                drawn = Drawn(time.monotonic(), tuple(message.metadata.delta_path), message.delta.new_element)
                run.drawn.append(drawn)
                widget_id = getattr(getattr(drawn.element, drawn.kind), "id", "")
                if widget_id:
                    self.widgets[widget_id] = drawn.element
            elif kind == "script_finished" and begun:
                run.finished = time.monotonic()
                run.status = ForwardMsg.ScriptFinishedStatus.Name(message.script_finished)
                if message.script_finished != ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                    return run

    def widget_id(self, kind: str, label_start: str = "") -> str:
        """The id of the last run's widget of this kind (e.g. "file_uploader") whose label starts so."""
        for widget_id, element in self.widgets.items():
            if element.WhichOneof("type") == kind and getattr(element, kind).label.startswith(label_start):
                return widget_id
        raise SessionError(f"the page has no {kind} widget labelled {label_start!r}…")
