# make demo: set up .venv and run the LV-BERT pipeline on a CPU-sized recipe.
# make test: set up .venv and run the test suite.
# Both are idempotent: set-up happens once (again only when pyproject.toml changes).
# make floors: a second venv at the lowest versions pyproject.toml declares for transformers,
# optuna and datasets, running the tests that use them (the floors are versions we test with).

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
# The suite runs in one process per core (pytest-xdist; each test file stays in one process, so
# module fixtures are built once), one torch thread each: 2 cores run it in about half the time.
# At most 4 processes (each imports torch: ~0.5 GB), at most one per core this process may use.
TEST_WORKERS ?= $(shell $(PYTHON) -c 'import os; print(min(4, len(getattr(os, "sched_getaffinity", lambda _: range(os.cpu_count() or 1))(0))))')
FLOORS_VENV ?= .venv-floors
FLOOR_PACKAGES := transformers optuna datasets
FLOOR_TESTS ?= tests/strategies/test_optuna.py tests/text tests/glue tests/spaces/test_lvbert_export.py \
	tests/spaces/test_lvbert_official_cli.py tests/spaces/test_lvbert_supernet.py tests/test_floors.py

.PHONY: setup demo test lint bench clean floors

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
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# The pins are read off pyproject.toml ("name>=X" -> "name==X"), so the target tests what is declared.
floors:
	rm -rf $(FLOORS_VENV)
	$(PYTHON) -m venv $(FLOORS_VENV)
	$(FLOORS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(FLOORS_VENV)/bin/python -m pip install --quiet torch==2.13.0
	$(FLOORS_VENV)/bin/python -m pip install --quiet -e '.[dev]' \
		$$($(PYTHON) -c 'import re, sys; t = open("pyproject.toml").read(); \
		print(" ".join(n + "==" + re.search(r"\"" + n + r">=([^,\"]+)", t).group(1) for n in sys.argv[1:]))' \
		$(FLOOR_PACKAGES))
	$(FLOORS_VENV)/bin/python -m pip list 2>/dev/null | grep -iE '^($(subst $(eval) ,|,$(FLOOR_PACKAGES))) '
	NASPLUG_FLOORS="$(FLOOR_PACKAGES)" $(FLOORS_VENV)/bin/python -m pytest -q -p no:cacheprovider $(FLOOR_TESTS)

lint: $(STAMP)
	$(BIN)/ruff check nasplug spaces strategies tests benchmarks examples
	$(BIN)/mypy

clean:
	rm -rf $(VENV) $(FLOORS_VENV) runs .pytest_cache
