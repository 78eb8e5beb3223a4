# The two commands: `make run` (everything locally; options in ARGS, e.g.
# make run ARGS="--port 9000") and `make test` (the whole suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-faults lint typecheck check system-deps clean

run: $(STAMP) system-deps
	$(BIN)/tilegraph dev $(ARGS)

test: $(STAMP)
	@scripts/ensure-system-deps --browser
	$(BIN)/pytest

test-faults: $(STAMP) system-deps
	$(BIN)/pytest tests/faults

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test

system-deps:
	@scripts/ensure-system-deps

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Tilegraph needs Python 3.11 or newer (found $$($(PYTHON) --version))."; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[local,test]'
	@touch $(STAMP)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
