"""The team's app images (apps/chatbot, apps/classifier), checked without building them: stages,
user, health check, labels, context, pins, and the app kit's wheel from kit/ in the builder only."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

APPS = Path(__file__).parents[2] / "apps"
DIRECT = {
    "chatbot": {"fastapi", "uvicorn", "prometheus_client", "transformers", "peft", "chromadb", "sentence-transformers"},
    "classifier": {"fastapi", "uvicorn", "prometheus_client", "transformers", "peft"},
}
CONTEXT = {
    "chatbot": {"chatbot", "requirements.txt", "requirements-gpu.txt", "wheels", "kit"},
    "classifier": {"classifier", "requirements.txt", "wheels", "kit"},
}

pytestmark = pytest.mark.parametrize("name", sorted(DIRECT))


def stages(name: str) -> tuple[str, str, str]:
    """(the whole Dockerfile, its builder stage, its final stage)."""
    dockerfile = (APPS / name / "Dockerfile").read_text()
    return dockerfile, dockerfile.split("\nFROM ", 2)[1], dockerfile.rsplit("\nFROM ", 1)[1]


def test_base_image_is_a_build_argument_with_a_slim_default(name: str) -> None:
    dockerfile, _, _ = stages(name)
    assert "ARG BASE_IMAGE=python:3.11-slim\n" in dockerfile.split("\nFROM ", 1)[0]
    assert re.findall(r"^FROM (\S+)", dockerfile, re.M) == ["${BASE_IMAGE}", "${BASE_IMAGE}"]


def test_wheels_and_the_kit_stay_in_the_builder_and_only_the_venv_reaches_the_final_stage(name: str) -> None:
    dockerfile, builder, final = stages(name)
    assert "COPY wheels/ /wheels/" in builder and "COPY kit/ /kit/" in builder
    installs = re.findall(r"pip install [^;]*;", builder)
    assert len(installs) == 2 and all(line.endswith("/kit/*.whl;") for line in installs)
    assert "--no-index --find-links /wheels" in installs[0]
    assert "wheels" not in final and "kit" not in final
    assert "COPY --from=builder /opt/venv /opt/venv" in final
    assert "--mount" not in dockerfile  # the classic builder has no RUN --mount


def test_final_stage_runs_unprivileged_with_a_health_check_and_labels(name: str) -> None:
    _, _, final = stages(name)
    assert re.search(r"^USER 10001:10001$", final, re.M)
    assert "/healthz" in final.split("HEALTHCHECK", 1)[1].split("\n\n", 1)[0]
    assert re.search(r"^EXPOSE 8000$", final, re.M)
    for label in ("title", "version", "revision", "source"):
        assert f"org.opencontainers.image.{label}=" in final
    assert '"${VERSION}"' in final and '"${GIT_REVISION}"' in final


def test_no_build_argument_or_environment_variable_names_a_secret(name: str) -> None:
    dockerfile, _, final = stages(name)
    names = re.findall(r"^(?:ARG|ENV)\s+(\w+)", dockerfile, re.M)
    names += re.findall(r"^\s+(\w+)=", final.split("ENV ", 1)[1].split("\nRUN", 1)[0], re.M)
    assert not [n for n in names if re.search(r"KEY|TOKEN\b|TOKEN_|SECRET|PASSWORD|CREDENTIAL", n)]


def test_build_context_admits_only_what_the_image_needs(name: str) -> None:
    app = APPS / name
    patterns = [p for p in (app / ".dockerignore").read_text().splitlines() if p and not p.startswith("#")]
    assert patterns[0] == "*"
    assert {p[1:] for p in patterns if p.startswith("!")} == CONTEXT[name]
    assert (app / "wheels" / ".gitkeep").is_file()
    assert {"wheels/*", "!wheels/.gitkeep", "kit/"} <= set((app / ".gitignore").read_text().splitlines())


def test_requirements_are_exact_pins_with_the_cpu_torch_release_and_no_kit(name: str) -> None:
    text = (APPS / name / "requirements.txt").read_text()
    lines = [line for line in text.splitlines() if line and line[0] not in "# "]
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+==[A-Za-z0-9_.+-]+", line) for line in lines)
    assert "torch==2.13.0" in lines
    assert DIRECT[name] <= {line.split("==")[0] for line in lines}
    assert "appkit" not in text  # the kit comes from kit/, never from an index


def test_the_app_never_imports_the_workbench(name: str) -> None:
    for source in (APPS / name / name).rglob("*.py"):
        assert not re.search(r"^\s*(from|import) (services|workbench|screens)\b", source.read_text(), re.M), source
