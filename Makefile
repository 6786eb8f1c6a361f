# The two set-up commands of the README: `make demo` and `make test`.
# Each installs what it needs into .venv first (Python 3.11+ required).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SCALE  ?= small

.PHONY: install demo test lint format bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "tenancy-fixtures needs Python 3.11+; run e.g. make PYTHON=python3.12"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e . --group dev
	@touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/tenancy-fixtures demo

test: install
	$(BIN)/pytest -n auto

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Benchmarks (issue 5): `make bench` quick check, `make bench SCALE=full` for the README.
bench: install
	$(BIN)/python -m pip install --quiet -e . --group bench
	$(BIN)/python -m bench.run --scale $(SCALE)

clean:
	rm -rf $(VENV) .tenancy .mypy_cache .ruff_cache .pytest_cache
