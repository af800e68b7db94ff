"""Building images: build arguments, the streamed log as typed events, failures and cancelling.

The engine is `tests.fakedocker.FakeDockerAPI` (the real engine runs in tests/integration); the
cancel of a blocked stream is checked on a real socket with a slow local HTTP server.
"""

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from services.errors import CancelledError, ImageBuildError, UsageError
from services.images.apps import AppSource, GitVersion
from services.images.build import BuildFinished, BuildLog, BuildStep, build_image, parse_build_args, plan_build
from services.images.engine import APP_LABEL
from services.images.stream import AbortableStream
from services.progress import CancelToken
from tests.fakedocker import STEPS, FakeDockerAPI
from tests.images_support import git_app, short_head

VERSION = GitVersion("1a2b3c4", "1a2b3c4" + "0" * 33, False)


def hello(tmp_path: Path) -> AppSource:
    return AppSource("hello", tmp_path)


def test_plan_sets_tag_args_and_labels(tmp_path: Path) -> None:
    app = git_app(tmp_path)
    request = plan_build(
        AppSource("hello", app), registry="reg:5000", base_image="base:1", build_args={"PIP_NO_CACHE_DIR": "1"}
    )
    sha = short_head(tmp_path)
    assert request.reference == f"reg:5000/hello:{sha}"
    assert request.build_args == {
        "VERSION": sha,
        "GIT_REVISION": request.version.revision,
        "PIP_NO_CACHE_DIR": "1",
        "BASE_IMAGE": "base:1",
    }
    assert request.labels == {APP_LABEL: "hello"}


def test_without_a_base_image_the_dockerfile_default_applies(tmp_path: Path) -> None:
    request = plan_build(hello(tmp_path), registry=None, version=VERSION)
    assert "BASE_IMAGE" not in request.build_args
    assert request.reference == "hello:1a2b3c4"


@pytest.mark.parametrize(
    ("pair", "expected"),
    [
        ("NOVALUE", "is not KEY=VALUE"),
        ("VERSION=9", "set by the workbench"),
        ("BASE_IMAGE=x", "set by the workbench"),
        ("HF_TOKEN=hf_x", "looks like a secret"),
        ("DB_PASSWORD=x", "looks like a secret"),
        ("OPENAI_API_KEY=x", "looks like a secret"),
    ],
)
def test_bad_build_args_are_refused(pair: str, expected: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_build_args([pair])
    assert expected in err.value.message
    assert err.value.exit_code == 2


def test_build_streams_typed_events(tmp_path: Path) -> None:
    api = FakeDockerAPI()
    request = plan_build(hello(tmp_path), registry="reg:5000", base_image="base:1", version=VERSION)
    events: list[object] = []
    result = build_image(api, request, on_event=events.append)
    steps = [e for e in events if isinstance(e, BuildStep)]
    assert [s.instruction for s in steps] == list(STEPS)
    assert steps[0].text == f"Step 1/{len(STEPS)} : FROM ${{BASE_IMAGE}}"
    logs = [e.text for e in events if isinstance(e, BuildLog)]
    assert " ---> Running in 000000000001" in logs  # joined from two chunks
    assert isinstance(events[-1], BuildFinished)
    assert result.reference == "reg:5000/hello:1a2b3c4"
    assert result.image_id.startswith("sha256:") and result.steps == len(STEPS)
    call = api.builds[0]
    assert call["tag"] == request.reference and call["buildargs"]["BASE_IMAGE"] == "base:1"
    assert call["custom_context"] is True and call["decode"] is True and call["forcerm"] is True
    assert request.reference in api.images_by_ref


def test_a_failing_step_names_the_step_and_the_engine_message(tmp_path: Path) -> None:
    api = FakeDockerAPI(fail_step=2)
    logs: list[str] = []
    with pytest.raises(ImageBuildError) as err:
        build_image(
            api, plan_build(hello(tmp_path), registry=None, version=VERSION), on_event=lambda e: logs.append(e.text)
        )
    message = err.value.message
    assert message.startswith(f"build of hello failed at step 2/{len(STEPS)} (RUN useradd")
    assert "returned a non-zero code: 1" in message
    assert "useradd: failure while writing changes" in logs
    assert api.images_by_ref == {}


def test_cancel_stops_between_events_and_closes_the_stream(tmp_path: Path) -> None:
    api = FakeDockerAPI(step_delay=0.2)
    cancel = CancelToken()
    threading.Timer(0.1, cancel.cancel).start()
    started = time.monotonic()
    with pytest.raises(CancelledError) as err:
        build_image(api, plan_build(hello(tmp_path), registry=None, version=VERSION), cancel=cancel)
    assert time.monotonic() - started < 1.0
    assert err.value.message == "build of hello cancelled"
    assert api.closed_streams == 1 and api.images_by_ref == {}


class SlowChunks(BaseHTTPRequestHandler):
    """Sends one chunk, then nothing for 30 s: a build step that prints nothing."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.write(b"6\r\nstart\n\r\n")
        self.wfile.flush()
        time.sleep(30)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def slow_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), SlowChunks)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_cancel_unblocks_a_read_that_waits_on_the_socket(slow_server: str) -> None:
    # docker-py's APIClient is a requests.Session: the same response hook sees its streaming responses
    session = requests.Session()
    cancel = CancelToken()
    received: list[bytes] = []
    started = time.monotonic()
    with pytest.raises(requests.exceptions.RequestException), AbortableStream(session, cancel) as stream:
        response = session.get(slow_server, stream=True, timeout=60)
        threading.Timer(0.3, cancel.cancel).start()
        for chunk in response.iter_content(chunk_size=None):
            received.append(chunk)
        raise requests.exceptions.ConnectionError("stream ended")  # a clean end counts as cut too
    assert time.monotonic() - started < 5
    assert stream.aborted and received == [b"start\n"]
    assert session.hooks["response"] == []
