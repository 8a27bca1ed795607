# The two commands: `make run` (the whole demo against the built-in sandbox) and `make test`.
# Both create the virtual environment in .venv/ and install the project if it is missing or stale.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/journey run --sandbox
	@echo
	@echo "Open the dashboard: $(BIN)/journey dashboard   (then http://127.0.0.1:8501/)"

# The dashboard's end-to-end test drives Debian's Chromium (Playwright's own browser download is not used).
test: $(STAMP)
	test -x /usr/bin/chromium || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)
	$(BIN)/python -m pytest

# While iterating: everything but the end-to-end chain.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m 'not slow'

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf data/*.duckdb data/*.duckdb.wal data/*_dlt dbt_project/target dbt_project/logs
