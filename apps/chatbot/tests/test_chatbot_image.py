"""The image recipe, checked without building it: stages, user, health check, labels, context, pins."""

from __future__ import annotations

import re
from pathlib import Path

APP = Path(__file__).resolve().parents[1]
DOCKERFILE = (APP / "Dockerfile").read_text()
FINAL_STAGE = DOCKERFILE.rsplit("\nFROM ", 1)[1]
BUILDER_STAGE = DOCKERFILE.split("\nFROM ", 2)[1]


def test_base_image_is_a_build_argument_with_a_slim_default() -> None:
    assert "ARG BASE_IMAGE=python:3.11-slim\n" in DOCKERFILE.split("\nFROM ", 1)[0]
    assert re.findall(r"^FROM (\S+)", DOCKERFILE, re.M) == ["${BASE_IMAGE}", "${BASE_IMAGE}"]


def test_wheels_stay_in_the_builder_and_only_the_venv_reaches_the_final_stage() -> None:
    assert "COPY wheels/ /wheels/" in BUILDER_STAGE
    assert "--no-index --find-links /wheels" in BUILDER_STAGE
    assert "wheels" not in FINAL_STAGE
    assert "COPY --from=builder /opt/venv /opt/venv" in FINAL_STAGE
    assert "--mount" not in DOCKERFILE  # the classic builder has no RUN --mount


def test_final_stage_runs_unprivileged_with_a_health_check_and_labels() -> None:
    assert re.search(r"^USER 10001:10001$", FINAL_STAGE, re.M)
    assert "HEALTHCHECK" in FINAL_STAGE
    assert "/healthz" in FINAL_STAGE.split("HEALTHCHECK", 1)[1].split("\n\n", 1)[0]
    assert re.search(r"^EXPOSE 8000$", FINAL_STAGE, re.M)
    for label in ("title", "version", "revision", "source"):
        assert f"org.opencontainers.image.{label}=" in FINAL_STAGE
    assert '"${VERSION}"' in FINAL_STAGE
    assert '"${GIT_REVISION}"' in FINAL_STAGE


def test_no_build_argument_or_environment_variable_names_a_secret() -> None:
    names = re.findall(r"^(?:ARG|ENV)\s+(\w+)", DOCKERFILE, re.M)
    names += re.findall(r"^\s+(\w+)=", FINAL_STAGE.split("ENV ", 1)[1].split("\nRUN", 1)[0], re.M)
    assert not [n for n in names if re.search(r"KEY|TOKEN\b|TOKEN_|SECRET|PASSWORD|CREDENTIAL", n)]


def test_build_context_admits_only_what_the_image_needs() -> None:
    patterns = [p for p in (APP / ".dockerignore").read_text().splitlines() if p and not p.startswith("#")]
    assert patterns[0] == "*"
    allowed = {p[1:] for p in patterns if p.startswith("!")}
    assert allowed == {"chatbot", "requirements.txt", "requirements-gpu.txt", "wheels"}
    assert (APP / "wheels" / ".gitkeep").is_file()
    assert {"wheels/*", "!wheels/.gitkeep"} <= set((APP / ".gitignore").read_text().splitlines())


def test_requirements_are_exact_pins_with_the_cpu_torch_release() -> None:
    lines = [line for line in (APP / "requirements.txt").read_text().splitlines() if line and line[0] not in "# "]
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+==[A-Za-z0-9_.+-]+", line) for line in lines)
    assert "torch==2.13.0" in lines
    direct = {"fastapi", "uvicorn", "prometheus_client", "transformers", "peft", "chromadb", "sentence-transformers"}
    assert direct <= {line.split("==")[0] for line in lines}


def test_the_app_never_imports_the_workbench() -> None:
    for source in (APP / "chatbot").rglob("*.py"):
        assert not re.search(r"^\s*(from|import) (services|workbench|screens)\b", source.read_text(), re.M), source
