"""Pushing images: per-layer progress folded from the engine's events, digest, refusals, cancel."""

import threading

import pytest
from pydantic import SecretStr

from services.errors import CancelledError, NotFoundError, RegistryAuthError, RegistryError
from services.images.credentials import RegistryCredentials
from services.images.push import PushProgress, PushTracker, push_image
from services.progress import CancelToken
from tests.fakedocker import LAYERS, FakeDockerAPI

REFERENCE = "reg:5000/hello:1a2b3c4"
CANARY = "canary-Pw-9c1e"


def built(**kwargs: object) -> FakeDockerAPI:
    api = FakeDockerAPI(**kwargs)  # type: ignore[arg-type]
    api.images_by_ref[REFERENCE] = {"Id": "sha256:" + "a" * 64, "RepoTags": [REFERENCE], "Labels": {}}
    return api


def credentials() -> RegistryCredentials:
    return RegistryCredentials("reg:5000", "workbench", SecretStr(CANARY), source="environment PW")


def test_tracker_folds_events_per_layer() -> None:
    reports: list[PushProgress] = []
    tracker = PushTracker(REFERENCE, reports.append, interval_s=0)
    tracker.feed({"status": "The push refers to repository [reg:5000/hello]"})
    tracker.feed({"status": "Preparing", "progressDetail": {}, "id": "aaa"})
    tracker.feed({"status": "Preparing", "progressDetail": {}, "id": "bbb"})
    tracker.feed({"status": "Pushing", "progressDetail": {"current": 50, "total": 100}, "id": "aaa"})
    tracker.feed({"status": "Pushing", "progressDetail": {"current": 130, "total": 100}, "id": "aaa"})
    tracker.feed({"status": "Layer already exists", "progressDetail": {}, "id": "bbb"})
    tracker.feed({"status": "Pushed", "progressDetail": {}, "id": "aaa"})
    tracker.feed({"progressDetail": {}, "aux": {"Tag": "1a2b3c4", "Digest": "sha256:d1", "Size": 949}})
    last = reports[-1]
    assert [(layer.id, layer.status, layer.current, layer.total) for layer in last.layers] == [
        ("aaa", "Pushed", 100, 100),
        ("bbb", "Layer already exists", 0, None),
    ]
    assert [layer.id for layer in last.changed] == ["aaa"]
    assert last.finished == 2 and last.fraction == 1.0
    assert max(r.done_bytes for r in reports) <= 100  # the engine's overshoot is capped
    assert (tracker.digest, tracker.manifest_bytes) == ("sha256:d1", 949)


def test_push_reports_layers_and_returns_the_digest() -> None:
    api = built(existing_layers=1)
    reports: list[PushProgress] = []
    result = push_image(api, REFERENCE, credentials=credentials(), on_progress=reports.append)
    assert result.digest.startswith("sha256:") and result.manifest_bytes == 949
    assert (result.pushed_layers, result.existing_layers) == (2, 1)
    assert result.pushed_bytes == sum(size for _, size in LAYERS[1:])
    assert reports and reports[-1].finished == len(LAYERS)
    call = api.pushes[0]
    assert (call["repository"], call["tag"], call["stream"], call["decode"]) == (
        "reg:5000/hello",
        "1a2b3c4",
        True,
        True,
    )
    assert call["auth_config"] == {"username": "workbench", "password": CANARY, "serveraddress": "reg:5000"}


def test_an_anonymous_push_refused_by_the_registry_says_how_to_log_in() -> None:
    api = built(push_error="unauthorized: authentication required")
    with pytest.raises(RegistryAuthError) as err:
        push_image(api, REFERENCE, credentials=None, auth_hint="run `docker login reg:5000`")
    assert (
        err.value.message == f"registry reg:5000 refused the push of {REFERENCE}: unauthorized: authentication required"
    )
    assert err.value.hint == "run `docker login reg:5000`"
    assert api.pushes[0]["auth_config"] == {}  # anonymous, not docker-py's fallback to ~/.docker


def test_other_push_failures_are_registry_errors() -> None:
    api = built(push_error="Get http://reg:5000/v2/: dial tcp: connection refused")
    with pytest.raises(RegistryError) as err:
        push_image(api, REFERENCE, credentials=credentials())
    assert not isinstance(err.value, RegistryAuthError)
    assert "connection refused" in err.value.message and CANARY not in str(err.value)


def test_pushing_an_image_that_was_never_built() -> None:
    with pytest.raises(NotFoundError) as err:
        push_image(FakeDockerAPI(), REFERENCE, credentials=None)
    assert err.value.step is not None and err.value.step.verb == "image.build"


def test_cancel_stops_a_push() -> None:
    api = built(step_delay=0.1)
    cancel = CancelToken()
    threading.Timer(0.15, cancel.cancel).start()
    with pytest.raises(CancelledError) as err:
        push_image(api, REFERENCE, credentials=None, cancel=cancel)
    assert "push again" in (err.value.hint or "")


def test_credentials_never_show_their_secret() -> None:
    creds = credentials()
    assert CANARY not in repr(creds) and CANARY not in str(creds)
