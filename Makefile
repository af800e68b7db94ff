# LLM Workbench: `make run` starts the app, `make test` runs the gate and every test layer.
# Both set everything up themselves on a fresh Debian 12 machine (as root, package registries only).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# FLAVOUR: cuda where `nvidia-smi -L` answers with at least one GPU, else cpu (`make run FLAVOUR=cpu`
# overrides). cpu installs the pinned CPU build of torch (tests and CI); cuda installs a CUDA build
# (TORCH_CUDA, from TORCH_INDEX when set, else the configured index, whose Linux torch is CUDA) and
# the `gpu` extra (bitsandbytes). The stamp names the flavour, so changing it reinstalls.
FLAVOUR    ?= $(shell nvidia-smi -L 2>/dev/null | grep -q '^GPU [0-9]' && echo cuda || echo cpu)
TORCH_SPEC ?= torch==2.13.0
TORCH_CUDA ?= torch>=2.4
TORCH_INDEX ?=
TORCH_cpu  := "$(TORCH_SPEC)"
TORCH_cuda := "$(TORCH_CUDA)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
EXTRAS_cpu := dev
EXTRAS_cuda := dev,gpu
STAMP  := $(VENV)/.installed-$(FLAVOUR)
# exit 0 when torch is missing or the wanted flavour (a CUDA build has torch.version.cuda)
TORCH_MATCHES := $(BIN)/python -c "import importlib.util as u, sys; u.find_spec('torch') or sys.exit(0); \
	import torch; sys.exit((torch.version.cuda is None) != ('$(FLAVOUR)' == 'cpu'))"

# Bytecode for the workbench's own packages, as pip writes for every installed one: an editable install
# leaves them as source, which a shell with PYTHONDONTWRITEBYTECODE (or a read-only checkout) would
# compile again at every start (~35 ms of the TUI's). Up-to-date files are skipped.
COMPILE := $(BIN)/python -m compileall -q workbench services apps/appkit/appkit

.PHONY: run install test quick gate unit ui integration bench testbed-up testbed-down clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# The project brings the app kit (apps/appkit) with it; the apps are installed from their folders
# (editable, for their tests), never from an index.
$(STAMP): pyproject.toml | $(BIN)/python
	@echo 'installing for $(FLAVOUR): torch $(TORCH_$(FLAVOUR)), extras [$(EXTRAS_$(FLAVOUR))]'
	rm -f $(VENV)/.installed $(VENV)/.installed-*
	$(TORCH_MATCHES) 2>/dev/null || $(BIN)/python -m pip uninstall -q -y torch
	$(BIN)/python -m pip install -q $(TORCH_$(FLAVOUR))
	$(TORCH_MATCHES) || { echo "torch is not a $(FLAVOUR) build: set TORCH_INDEX (see README, GPU server)"; exit 1; }
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS_$(FLAVOUR))]"
	$(BIN)/python -m pip install -q --no-deps -e apps/chatbot -e apps/classifier
	$(COMPILE)
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(COMPILE)
	$(BIN)/workbench

gate: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

testbed-up:
	scripts/testbed up

testbed-down:
	scripts/testbed down

test: $(STAMP) testbed-up gate
	$(BIN)/python -m pytest -q --durations=20

# Everything but the tests marked testbed, images or training (tests/markers.py): no services to
# start, no image builds, no trainer; one pytest-xdist worker per CPU; under 3 minutes on 2 cores.
QUICK := not testbed and not images and not training

quick: $(STAMP)
	$(BIN)/python -m pytest -q -n auto -m "$(QUICK)"

unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

ui: $(STAMP)
	$(BIN)/python -m pytest -q tests/ui

integration: $(STAMP) testbed-up
	$(BIN)/python -m pytest -q tests/integration

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache
