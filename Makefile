# Two entry points: `make demo` (set up + run the batch demo against the embedded
# mock server) and `make test` (set up + lint + types + tests). Both need only
# python3 (3.11+), make and git.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint types unit bench-smoke clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/evolink-async demo

test: $(STAMP) lint types unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

# A tiny size of every benchmark: proves they run, measures nothing worth keeping.
bench-smoke: $(STAMP)
	$(BIN)/python benchmarks/poll_efficiency.py --smoke
	$(BIN)/python benchmarks/chaos.py --smoke
	$(BIN)/python benchmarks/batch_throughput.py --smoke
	$(BIN)/python benchmarks/overhead.py --smoke
	$(BIN)/python benchmarks/scale.py --smoke

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache dist build
