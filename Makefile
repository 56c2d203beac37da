# Two commands for a newcomer: `make run` and `make test`. Both build .venv from
# pyproject.toml first (again only when pyproject.toml changes).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-servers check lint typecheck unit bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "mail-proxy needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[server,dev]'
	@touch $(STAMP)

## run: start the proxy on SQLite with a development SMTP sink and a demo tenant
run: $(STAMP)
	$(BIN)/mail-proxy serve --dev-sink

## test: lint, type-check, layer contracts, then the whole test suite
test: $(STAMP) test-servers lint typecheck
	$(BIN)/pytest

## check: lint, types, layer contracts and the fast tests, in under a minute (15-21 s
## here). The tests are the unit tests, the store contract and the services on SQLite; left out (and
## run by `make test`): PostgreSQL, the integration, example and acceptance suites,
## and the tests marked slow (the schemathesis fuzz run, several-process runs).
check: $(STAMP) lint typecheck
	$(BIN)/pytest -q -m "not slow and not postgres" tests/unit tests/contract tests/services

## test-servers: install the IMAP server and Chromium some tests drive (Debian packages, when root)
test-servers:
	@bash scripts/test-servers.sh

lint: $(STAMP)
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest tests/unit

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
