# The two commands: `make run` (the whole demo against the built-in sandbox) and `make test`.
# Both create the virtual environment in .venv/ and install the project if it is missing or stale.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast lint clean bqemulator

# The BigQuery emulator (bqemulator, DuckDB-backed) has pins of its own (duckdb 1.5.5), so it lives in its own
# environment; its DuckDB's spatial extension comes from PyPI and is put where that DuckDB looks for it.
BQEMU := .venv-bqemulator
BQEMU_STAMP := $(BQEMU)/.installed

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(BQEMU_STAMP): Makefile
	test -x $(BQEMU)/bin/python || $(PYTHON) -m venv $(BQEMU)
	$(BQEMU)/bin/python -m pip install --quiet --upgrade pip
	$(BQEMU)/bin/python -m pip install --quiet 'bqemulator==1.4.0' 'duckdb==1.5.5' 'duckdb-extension-spatial==1.5.5' 'numpy>=2,<3'
	$(BQEMU)/bin/python tests/bigquery/emulator.py --install-spatial
	touch $(BQEMU_STAMP)

bqemulator: $(BQEMU_STAMP)

run: $(STAMP)
	$(BIN)/journey run --sandbox
	@echo
	@echo "Open the dashboard: $(BIN)/journey dashboard   (then http://127.0.0.1:8501/)"

# The dashboard's end-to-end test drives Debian's Chromium (Playwright's own browser download is not used).
test: $(STAMP) $(BQEMU_STAMP)
	test -x /usr/bin/chromium || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)
	$(BIN)/python -m pytest

# While iterating: everything but the end-to-end chain.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m 'not slow'

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(BQEMU) data/*.duckdb data/*.duckdb.wal data/*_dlt dbt_project/target dbt_project/logs
