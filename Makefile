# The two set-up commands of the README: `make demo` and `make test`.
# Each installs what it needs into .venv first (Python 3.11+ required).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SCALE  ?= small

.PHONY: install system-tools demo test lint format bench clean

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

# Debian tools the tests drive: strace injects kills inside SQLite's commit (crash
# tests); chromium and chromium-driver run the dashboard in a real headless browser.
# Installed when missing and we may (root with apt-get); elsewhere those tests skip
# loudly, and fail in CI.
system-tools:
	@command -v strace >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
		&& { apt-get update -qq && apt-get install -y -qq strace >/dev/null; } \
		|| echo "strace not installed: the SQLite commit crash tests will skip"; }
	@{ [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; } \
		|| { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
		&& { apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; } \
		|| echo "chromium not installed: the dashboard browser tests will skip"; }

# --dist loadgroup: tests marked xdist_group (the browser tests) share one worker.
# Bytecode caches on (some machines export PYTHONDONTWRITEBYTECODE): the suite starts
# many Python processes (CLI, workers, inner pytest runs) that would each recompile
# the package and re-rewrite the test modules.
test: install system-tools
	PYTHONDONTWRITEBYTECODE= $(BIN)/pytest -n auto --dist loadgroup

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
	$(BIN)/python -m bench.plugin_overhead --scale $(SCALE)
	$(BIN)/python -m bench.citus

clean:
	rm -rf $(VENV) .tenancy .mypy_cache .ruff_cache .pytest_cache
