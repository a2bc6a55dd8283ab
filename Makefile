# make demo: set up .venv and run the LV-BERT pipeline on a CPU-sized recipe.
# make test: set up .venv and run the test suite.
# Both are idempotent: set-up happens once (again only when pyproject.toml changes).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_RECIPE ?= recipes/quickstart.yaml
DEMO_OUT ?= runs/demo
# Local data (corpus, GLUE TSVs). Without it the demo falls back to generated text and
# reports the GLUE tasks as missing; nothing is downloaded either way.
export NASPLUG_DATA_DIR ?= $(abspath ../shared/data)
PYTEST_ARGS ?=

.PHONY: setup demo test lint bench clean

setup: $(STAMP)

# torch first, pinned: the pin resolves to the local CPU wheel on the dev/CI machines and
# the normal build elsewhere; a looser requirement would pull in GBs of CUDA packages.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev,nni]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/nasplug run $(DEMO_RECIPE) --out $(DEMO_OUT) --resume

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check nasplug spaces strategies tests benchmarks examples
	$(BIN)/mypy

clean:
	rm -rf $(VENV) runs .pytest_cache
