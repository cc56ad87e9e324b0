# Two commands on a fresh machine with Python 3.11+: `make run` and `make test`.
# Each creates/updates .venv from the pinned constraints, installs the project, prepares
# the dbt manifest, then runs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# `make run` installs what a run needs: the core, plus the `live` extra for
# SELLOFF_SOURCE=live and `spark` for SELLOFF_DBT_TARGET=spark. `make test`, `make bench`,
# `make lint` and `make setup` install every extra (dev: pytest, Playwright, ruff).
RUN_EXTRAS := $(strip $(if $(filter live,$(SELLOFF_SOURCE)),live) $(if $(filter spark,$(SELLOFF_DBT_TARGET)),spark))
COMMA := ,
RUN_SPEC := .$(if $(RUN_EXTRAS),[$(subst $() $(),$(COMMA),$(RUN_EXTRAS))])
RUN_STAMP := $(VENV)/.installed-run$(subst $() $(),-,$(if $(RUN_EXTRAS),-$(RUN_EXTRAS)))
MANIFEST := dbt_project/target/manifest.json
DBT_FILES := $(shell find dbt_project -path dbt_project/target -prune -o -path dbt_project/logs -prune -o -type f \( -name '*.sql' -o -name '*.yml' -o -name '*.csv' \) -print)
export DAGSTER_HOME ?= $(CURDIR)/dagster_home

.PHONY: run test ui bench bench-spark lint setup manifest clean docs

run: $(RUN_STAMP) $(MANIFEST)
	$(BIN)/selloff run

# Two workers, one test module at a time each (tests/conftest.py: the longest first).
TEST_WORKERS ?= 2
test: $(STAMP) $(MANIFEST)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

ui: $(RUN_STAMP) $(MANIFEST)
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p $${PORT:-3000}

# One table: full build at 5,000 x 5 and 18,000 x 10, the bare floor, the one-day refresh,
# peak memory, against issue #19's targets (scripts/bench_all.py; about 20 min, quiet machine).
bench: $(STAMP) $(MANIFEST)
	$(BIN)/python scripts/bench_all.py

# DuckDB against the Spark standalone cluster on the same dbt project.
bench-spark: $(STAMP) $(MANIFEST)
	$(BIN)/python scripts/bench_spark.py --securities 5000 --years 5 --json warehouse/bench/spark.json

# The dbt docs site (models, the analytics tables, the report/fact-check/warehouse
# exposures, lineage) on http://127.0.0.1:$${DOCS_PORT:-8081}. Its catalog (types, row
# counts) comes from a copy of the published file, which a refresh never locks.
docs: $(RUN_STAMP) $(MANIFEST)
	@test -f warehouse/selloff.duckdb || { echo "no warehouse/selloff.duckdb: run make run first"; exit 2; }
	cp warehouse/selloff.duckdb dbt_project/target/docs_catalog.duckdb
	cd dbt_project && ../$(BIN)/dbt docs generate --quiet --profiles-dir . --project-dir . \
	  --vars '{selloff_build_db: target/docs_catalog.duckdb}'
	cd dbt_project && ../$(BIN)/dbt docs serve --profiles-dir . --project-dir . \
	  --host 127.0.0.1 --port $${DOCS_PORT:-8081} --no-browser

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/sqlfluff lint dbt_project/models --processes 2

setup: $(STAMP)
manifest: $(MANIFEST)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check uv
	$(BIN)/uv pip install --python $(BIN)/python -q --compile-bytecode -c constraints.txt -e '.[dev,live,spark]'
	@touch $(STAMP) $(RUN_STAMP)

$(RUN_STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check uv
	$(BIN)/uv pip install --python $(BIN)/python -q --compile-bytecode -c constraints.txt -e '$(RUN_SPEC)'
	@touch $(RUN_STAMP)

# dagster-dbt loads the manifest at import; `prepare_if_dev` only runs under `dagster dev`.
$(MANIFEST): $(RUN_STAMP) $(DBT_FILES)
	cd dbt_project && ../$(BIN)/dbt parse --quiet --profiles-dir . --project-dir .
	@touch $(MANIFEST)

clean:
	rm -rf warehouse reports dbt_project/target dbt_project/logs
