"""The team's app images (apps/chatbot, apps/classifier), checked without building them: both are
built from the one Dockerfile of the app kit (apps/appkit/app.Dockerfile), never a copy of their
own; its stages, user, health check, labels and entry point; each app's context, pins, and the app
kit's wheel from kit/ in the builder only."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.errors import UsageError
from services.images.apps import GitVersion, discover_apps, find_app
from services.images.build import build_image, plan_build
from services.images.kit import AppKit
from tests.fakedocker import FakeDockerAPI

APPS = Path(__file__).parents[2] / "apps"
KIT_DOCKERFILE = APPS / "appkit" / "app.Dockerfile"
VERSION = GitVersion("1a2b3c4", "1a2b3c4" + "0" * 33, False)
DIRECT = {
    "chatbot": {"fastapi", "uvicorn", "prometheus_client", "transformers", "peft", "chromadb", "sentence-transformers"},
    "classifier": {"fastapi", "uvicorn", "prometheus_client", "transformers", "peft"},
}
CONTEXT = {
    "chatbot": {"chatbot", "requirements.txt", "requirements-gpu.txt", "wheels", "kit"},
    "classifier": {"classifier", "requirements.txt", "wheels", "kit"},
}
per_app = pytest.mark.parametrize("name", sorted(DIRECT))


def stages() -> tuple[str, str, str]:
    """(the whole kit Dockerfile, its builder stage, its final stage)."""
    dockerfile = KIT_DOCKERFILE.read_text()
    return dockerfile, dockerfile.split("\nFROM ", 2)[1], dockerfile.rsplit("\nFROM ", 1)[1]


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> AppKit:
    return AppKit(APPS / "appkit", tmp_path_factory.mktemp("kit-cache"))


def test_both_apps_are_built_from_the_one_kit_dockerfile_and_have_none_of_their_own(kit: AppKit) -> None:
    apps = {app.name: app for app in discover_apps(APPS)}
    assert set(apps) == set(DIRECT)  # the kit itself is no app
    for name, app in apps.items():
        assert not (APPS / name / "Dockerfile").exists(), f"apps/{name} has a Dockerfile of its own"
        assert app.recipe is not None and app.recipe.package == name and app.recipe.description
    api = FakeDockerAPI()

    for name in sorted(apps):
        request = plan_build(apps[name], registry=None, version=VERSION, kit=kit)
        build_image(api, request)
        assert request.build_args["APP"] == name
        assert request.build_args["DESCRIPTION"] == apps[name].recipe.description  # type: ignore[union-attr]

    for name, context, build in zip(sorted(apps), api.contexts, api.builds, strict=True):
        assert build["dockerfile"] == "Dockerfile" and context["Dockerfile"] == KIT_DOCKERFILE.read_bytes()
        assert f"{name}/app.py" in context and f"kit/{kit.wheel().name}" in context
        assert {path.split("/")[0] for path in context} == CONTEXT[name] | {"Dockerfile", ".dockerignore"}


def test_the_workbench_sets_app_and_description_from_the_apps_pyproject(kit: AppKit) -> None:
    chatbot = find_app(discover_apps(APPS), "chatbot")
    with pytest.raises(UsageError) as err:
        plan_build(chatbot, registry=None, version=VERSION, kit=kit, build_args={"APP": "classifier"})
    assert "set by the workbench" in err.value.message and "[tool.appkit.image]" in (err.value.hint or "")

    with pytest.raises(UsageError) as err:
        plan_build(chatbot, registry=None, version=VERSION, kit=None)
    assert "built from the app kit's Dockerfile" in err.value.message


def test_base_image_is_a_build_argument_with_a_slim_default() -> None:
    dockerfile, _, _ = stages()
    assert "ARG BASE_IMAGE=python:3.11-slim\n" in dockerfile.split("\nFROM ", 1)[0]
    assert re.findall(r"^FROM (\S+)", dockerfile, re.M) == ["${BASE_IMAGE}", "${BASE_IMAGE}"]


def test_the_builder_refuses_to_build_without_app() -> None:
    _, builder, _ = stages()
    assert re.search(r"^ARG APP\nRUN test -n \"\$\{APP\}\" \|\| ", builder, re.M)


def test_wheels_and_the_kit_stay_in_the_builder_and_only_the_venv_reaches_the_final_stage() -> None:
    dockerfile, builder, final = stages()
    assert "COPY wheels/ /wheels/" in builder and "COPY kit/ /kit/" in builder
    assert "ARG REQUIREMENTS=requirements.txt\n" in builder and "COPY requirements*.txt /build/" in builder
    installs = re.findall(r"pip install [^;]*;", builder)
    assert len(installs) == 2 and all(line.endswith("/kit/*.whl;") for line in installs)
    assert all('-r "/build/${REQUIREMENTS}"' in line for line in installs)
    assert "--no-index --find-links /wheels" in installs[0]
    assert "wheels" not in final and "/kit" not in final and "kit/" not in final
    assert "COPY --from=builder /opt/venv /opt/venv" in final
    assert "--mount" not in dockerfile and "# syntax" not in dockerfile  # the classic builder: no BuildKit


def test_final_stage_runs_the_app_unprivileged_with_a_health_check_and_labels() -> None:
    _, _, final = stages()
    assert re.search(r"^USER 10001:10001$", final, re.M)
    assert "--uid 10001" in final and "--gid 10001" in final
    assert "/healthz" in final.split("HEALTHCHECK", 1)[1].split("\n\n", 1)[0]
    assert re.search(r"^EXPOSE 8000$", final, re.M)
    assert "COPY ${APP}/ /app/${APP}/" in final and "ENV APP=${APP}" in final
    assert 'ENTRYPOINT ["python3", "-m", "appkit.serve", "--app-dir", "/app"]' in final
    for label in ("title", "description", "version", "revision", "source"):
        assert f"org.opencontainers.image.{label}=" in final
    assert '"${APP}"' in final and '"${DESCRIPTION}"' in final
    assert '"${VERSION}"' in final and '"${GIT_REVISION}"' in final
    assert "ENV APP_VERSION=${VERSION}" in final


def test_the_runtime_stays_offline_and_quiet() -> None:
    _, _, final = stages()
    env = final.split("ENV ", 1)[1].split("\nRUN", 1)[0]
    for setting in (
        "HF_HUB_OFFLINE=1",
        "TRANSFORMERS_OFFLINE=1",
        "HF_HUB_DISABLE_TELEMETRY=1",
        "ANONYMIZED_TELEMETRY=False",
    ):
        assert setting in env


def test_no_build_argument_or_environment_variable_names_a_secret() -> None:
    dockerfile, _, final = stages()
    names = re.findall(r"^(?:ARG|ENV)\s+(\w+)", dockerfile, re.M)
    names += re.findall(r"^\s+(\w+)=", final.split("ENV ", 1)[1].split("\nRUN", 1)[0], re.M)
    assert not [n for n in names if re.search(r"KEY|TOKEN\b|TOKEN_|SECRET|PASSWORD|CREDENTIAL", n)]


@per_app
def test_the_app_has_the_factory_the_kit_serves(name: str) -> None:
    assert re.search(r"^def create_app\(", (APPS / name / name / "app.py").read_text(), re.M)


@per_app
def test_build_context_admits_only_what_the_image_needs(name: str) -> None:
    app = APPS / name
    patterns = [p for p in (app / ".dockerignore").read_text().splitlines() if p and not p.startswith("#")]
    assert patterns[0] == "*"
    assert {p[1:] for p in patterns if p.startswith("!")} == CONTEXT[name]
    assert (app / "wheels" / ".gitkeep").is_file()
    assert {"wheels/*", "!wheels/.gitkeep", "kit/"} <= set((app / ".gitignore").read_text().splitlines())


@per_app
def test_requirements_are_exact_pins_with_the_cpu_torch_release_and_no_kit(name: str) -> None:
    text = (APPS / name / "requirements.txt").read_text()
    lines = [line for line in text.splitlines() if line and line[0] not in "# "]
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+==[A-Za-z0-9_.+-]+", line) for line in lines)
    assert "torch==2.13.0" in lines
    assert DIRECT[name] <= {line.split("==")[0] for line in lines}
    assert "appkit" not in text  # the kit comes from kit/, never from an index


@per_app
def test_the_app_never_imports_the_workbench(name: str) -> None:
    for source in (APPS / name / name).rglob("*.py"):
        assert not re.search(r"^\s*(from|import) (services|workbench|screens)\b", source.read_text(), re.M), source
