# LLM Workbench: `make run` starts the app, `make test` runs the gate and every test layer.
# Both set everything up themselves on a fresh Debian 12 machine (as root, package registries only).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The CPU build of torch for tests and CI; GPU machines may set TORCH_SPEC=torch to get CUDA.
TORCH_SPEC ?= torch==2.13.0
STAMP  := $(VENV)/.installed

.PHONY: run test quick gate unit ui integration bench testbed-up testbed-down clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# The project brings the app kit (apps/appkit) with it; the apps are installed from their folders
# (editable, for their tests), never from an index.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	$(BIN)/python -m pip install -q --no-deps -e apps/chatbot -e apps/classifier
	touch $(STAMP)

run: $(STAMP)
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
	$(BIN)/python -m pytest -q

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
