"""The team's real apps (apps/chatbot, apps/classifier) through the Images services on the test bed:
built from the local base image, a wheelhouse (`pip wheel` of the app's pinned requirements on
the host; the CPU torch comes from the local find-links) and the app kit's wheel, pushed to the
htpasswd registry, pulled on the second engine, run with a tiny model mounted read-only, and called
over HTTP with a key (the chatbot through the OpenAI client).

Slow (a few minutes per app: torch and friends are installed into the image); one test per app.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from services.images.ops import build_app, push_app
from tests.integration.images_support import (
    DEPLOY_HOST_IP,
    ImagesBed,
    engine,
    http,
    pull,
    running,
    wait_healthy,
)

APPS = Path(__file__).parents[2] / "apps"
API_KEY = "sk-test-" + uuid.uuid4().hex
ENV_PREFIX = {"chatbot": "CHATBOT_", "classifier": "CLASSIFIER_"}


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Wheels of both apps' requirements, made on the host (the image never reaches an index)."""
    target = tmp_path_factory.mktemp("wheelhouse")
    requirements = [arg for app in ENV_PREFIX for arg in ("-r", str(APPS / app / "requirements.txt"))]
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", *requirements, "-w", str(target)], check=True, timeout=3000
    )
    torch = [wheel.name for wheel in target.glob("torch-*.whl")]
    assert torch and all("+cpu" in name for name in torch), f"not the CPU torch: {torch}"
    return target


@pytest.fixture(scope="module")
def models() -> Iterator[Path]:
    """The demo tiny Llama (chatbot) and a two-label sequence classifier made from it (classifier), in
    a folder the containers' user 10001 can read (pytest's own temp folders are private to root)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForSequenceClassification

    from services.demo import build_tiny_llama

    root = Path(tempfile.mkdtemp(prefix="wb-images-models-"))
    root.chmod(0o755)
    try:
        llama = build_tiny_llama(root / "chatbot")
        labels = {0: "negative", 1: "positive"}
        config = LlamaConfig.from_pretrained(
            llama, num_labels=2, id2label=labels, label2id={"negative": 0, "positive": 1}
        )
        torch.manual_seed(11)
        LlamaForSequenceClassification(config).save_pretrained(root / "classifier")
        AutoTokenizer.from_pretrained(llama).save_pretrained(root / "classifier")
        for path in [root, *root.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def context_with_wheels(name: str, wheels: Path, root: Path) -> Path:
    """A copy of apps/<name> whose wheels/ holds the wheelhouse (hard links; the repo stays untouched)."""
    target = root / name
    ignore = shutil.ignore_patterns("__pycache__", ".*_cache", "tests", "*.whl", "kit")
    shutil.copytree(APPS / name, target, ignore=ignore)
    for wheel in wheels.glob("*.whl"):
        os.link(wheel, target / "wheels" / wheel.name)
    return target


def kit_installed(api: Any, reference: str) -> bool:
    """Whether the image's Python imports the kit from its venv (and kit/ did not reach the final stage)."""
    script = "import appkit.prompt, os, sys; sys.exit(os.path.exists('/kit'))"
    container = api.create_container(reference, entrypoint=["python3", "-c", script])
    try:
        api.start(container["Id"])
        return api.wait(container["Id"], timeout=120)["StatusCode"] == 0
    finally:
        api.remove_container(container["Id"], force=True)


def ask_chatbot(url: str) -> None:
    import httpx
    import openai

    assert http(f"{url}/v1/models")[0] == 401
    assert http(f"{url}/v1/models", key="sk-wrong")[0] == 403
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=API_KEY, http_client=httpx.Client(trust_env=False))
    assert [model.id for model in client.models.list()] == ["chatbot"]
    answer = client.chat.completions.create(
        model="chatbot", messages=[{"role": "user", "content": "Hello?"}], max_tokens=4
    )
    assert isinstance(answer.choices[0].message.content, str) and answer.usage is not None
    assert answer.usage.completion_tokens <= 4


def ask_classifier(url: str) -> None:
    body = {"texts": ["great service", "awful service"]}
    assert http(f"{url}/v1/classify", body=body)[0] == 401
    assert http(f"{url}/v1/classify", key="sk-wrong", body=body)[0] == 403
    status, answer = http(f"{url}/v1/classify", key=API_KEY, body=body)
    assert status == 200, answer
    assert [result["label"] in {"negative", "positive"} for result in answer["results"]] == [True, True]


@pytest.mark.timeout(3000)
@pytest.mark.parametrize("name", ["chatbot", "classifier"])
def test_real_app_builds_pushes_pulls_runs_and_answers(
    name: str, bed: ImagesBed, wheelhouse: Path, models: Path, tmp_path: Path
) -> None:
    assert not (APPS / name / "Dockerfile").exists(), f"apps/{name} is built from the kit's Dockerfile, not its own"
    context = context_with_wheels(name, wheelhouse, tmp_path)
    config = bed.config(tmp_path / "no-apps-here", app_dirs=(context,), kit_dir=APPS / "appkit")
    built = build_app(config, name)
    host = engine(bed.docker_host)
    image = host.inspect_image(built.reference)
    assert image["Config"]["User"] == "10001:10001" and image["Config"]["Healthcheck"]["Test"]
    labels = image["Config"]["Labels"]
    assert labels["org.opencontainers.image.title"] == name and labels["org.opencontainers.image.description"]
    assert image["Config"]["Entrypoint"][:3] == ["python3", "-m", "appkit.serve"]
    assert f"APP={name}" in image["Config"]["Env"]
    assert kit_installed(host, built.reference), "the app kit is not in the image's environment"
    assert API_KEY not in json.dumps(image) + json.dumps(host.history(built.reference))

    pushed = push_app(config, name)
    assert pushed.digest.startswith("sha256:") and pushed.size_bytes

    deploy = engine(bed.deploy_docker_host)
    pull(deploy, built.reference, bed)
    prefix = ENV_PREFIX[name]
    environment = {f"{prefix}MODEL_PATH": f"/models/{name}", f"{prefix}API_KEYS": API_KEY}
    binds = {str(models): {"bind": "/models", "mode": "ro"}}
    try:
        with running(deploy, built.reference, environment, binds=binds) as (container, port):
            wait_healthy(deploy, container, timeout=240)
            url = f"http://{DEPLOY_HOST_IP}:{port}"
            _wait_ready(url, deploy, container)
            assert http(f"{url}/healthz")[1]["version"] == built.version  # APP_VERSION reached the app
            (ask_chatbot if name == "chatbot" else ask_classifier)(url)
    finally:
        deploy.remove_image(built.reference, force=True)


def _wait_ready(url: str, api: Any, container: str, timeout: float = 240.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while http(f"{url}/readyz")[0] != 200:
        if time.monotonic() > deadline:
            raise AssertionError(api.logs(container, tail=40).decode(errors="replace"))
        time.sleep(1)
