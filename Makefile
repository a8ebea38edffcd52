# radgen developer entry points. Everything runs inside .venv/ at the repo root.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_WORKERS ?= auto

.PHONY: install demo test lint typecheck unit bench clean

install: $(STAMP)

# Re-install when the pins change. Packages come from the package registry only.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip==26.3"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	# PyRadiomics (test oracle and benchmark baseline) cannot build in an isolated env on 3.11.
	$(BIN)/python -m pip install --quiet -c constraints.txt setuptools wheel
	$(BIN)/python -m pip install --quiet -c constraints.txt --no-build-isolation "pyradiomics==3.0.1"
	touch $(STAMP)

demo: install
	$(BIN)/radgen demo

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: install
	$(BIN)/mypy

test: install lint typecheck
	GX_ANALYTICS_ENABLED=False $(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile tests

bench: install
	for f in benchmarks/bench_*.py; do $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) radgen-catalog .pytest_cache .mypy_cache .ruff_cache
