# The image of every app built on the app kit (apps/chatbot, apps/classifier), written once.
# Works with the classic builder (no BuildKit-only syntax). The build context is the app's folder:
# its package APP/, requirements*.txt, wheels/ and kit/ (the kit's wheel), as its .dockerignore admits.
#
#   workbench image build <app>:  puts this file and the kit's wheel into the app's build context and
#                                 sets APP and DESCRIPTION from [tool.appkit.image] of its pyproject.toml
#   by hand, in apps/<app>:       pip wheel --no-deps ../appkit -w kit
#                                 docker build -f ../appkit/app.Dockerfile --build-arg APP=<package> -t <app> .
#   offline:                      pip wheel -r requirements.txt -w wheels   (then build: the wheels are used, never the index)
#   GPU:                          --build-arg BASE_IMAGE=nvidia/cuda:12.8.1-runtime-ubuntu24.04
#                                 --build-arg REQUIREMENTS=requirements-gpu.txt (where the app has one)
#                                 A base without Python gets the distribution's python3 + python3-venv
#                                 (3.12 on Ubuntu 24.04); an older one (3.10 on *-ubuntu22.04) stops the
#                                 build, since the pins need 3.11+. With requirements-gpu.txt the build
#                                 fails unless CUDA torch (not a +cpu build) and bitsandbytes import.
#
# Build arguments carry no secrets: the wheelhouse replaces any authenticated package index.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS builder
ARG APP
RUN test -n "${APP}" || { echo "APP is not set: build with --build-arg APP=<the app's package>" >&2; exit 1; }
ARG REQUIREMENTS=requirements.txt
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore
RUN if ! python3 -m venv --help >/dev/null 2>&1; then \
        apt-get update && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
 && python3 -c "import sys; v = sys.version_info[:2]; sys.exit(v < (3, 11) and f'BASE_IMAGE has Python {v[0]}.{v[1]}; the pins need 3.11+ (e.g. nvidia/cuda:12.8.1-runtime-ubuntu24.04)')"
COPY requirements*.txt /build/
# wheels/ holds only .gitkeep unless a wheelhouse was put there, kit/ the app kit's wheel; neither leaves this stage
COPY wheels/ /wheels/
COPY kit/ /kit/
RUN python3 -m venv /opt/venv \
 && if ls /wheels/*.whl >/dev/null 2>&1; then \
        /opt/venv/bin/pip install --no-index --find-links /wheels -r "/build/${REQUIREMENTS}" /kit/*.whl; \
    else \
        /opt/venv/bin/pip install -r "/build/${REQUIREMENTS}" /kit/*.whl; \
    fi \
 && /opt/venv/bin/pip uninstall --yes pip
# the GPU variant: CUDA torch and bitsandbytes, or no image (a CPU wheel in wheels/ would serve fp32 on the CPU)
RUN case "${REQUIREMENTS}" in *gpu*) /opt/venv/bin/python -c "import torch, bitsandbytes; \
v = torch.__version__; ok = torch.version.cuda and '+cpu' not in v; \
print('GPU variant: torch', v, 'CUDA', torch.version.cuda, 'bitsandbytes', bitsandbytes.__version__); \
raise SystemExit(0 if ok else f'torch {v} is a CPU build: give the GPU variant CUDA torch (no CPU wheel in wheels/)')";; esac

FROM ${BASE_IMAGE}
# offline models, and no library phones home (Hugging Face, Chroma)
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    XDG_CACHE_HOME=/tmp/.cache \
    HF_HOME=/tmp/hf-home \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HF_HUB_DISABLE_TELEMETRY=1 \
    ANONYMIZED_TELEMETRY=False \
    TOKENIZERS_PARALLELISM=false
# the venv's interpreter: a base without Python (a CUDA image) gets the one the builder used
RUN command -v python3 >/dev/null || { apt-get update && apt-get install -y --no-install-recommends python3 \
    && rm -rf /var/lib/apt/lists/*; }
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin app
COPY --from=builder /opt/venv /opt/venv
# APP names the package appkit.serve runs; the application code comes last, so changing it rebuilds only this layer
ARG APP
ENV APP=${APP}
COPY ${APP}/ /app/${APP}/
WORKDIR /app
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python3", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]
# uvicorn --factory $APP.app:create_app --app-dir /app --host 0.0.0.0 --port 8000 --no-access-log --timeout-graceful-shutdown 30
ENTRYPOINT ["python3", "-m", "appkit.serve", "--app-dir", "/app"]

ARG VERSION=0.0.0-dev
ARG GIT_REVISION=unknown
ARG SOURCE=https://github.com/llm-workbench/llm-workbench
ARG DESCRIPTION=
# the app's <PREFIX>VERSION (CHATBOT_VERSION, ...) defaults to APP_VERSION: see appkit.settings
ENV APP_VERSION=${VERSION}
LABEL org.opencontainers.image.title="${APP}" \
      org.opencontainers.image.description="${DESCRIPTION}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${GIT_REVISION}" \
      org.opencontainers.image.source="${SOURCE}"
