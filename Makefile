# Cairn — the two commands are `make run` and `make test`. Everything else is a helper.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# uv installs everything else; bring it in with pip if this machine has none.
UV := $(shell command -v uv 2>/dev/null || echo "$(HOME)/.local/bin/uv")
PY_SOURCES := shared/schemas/src shared/chassis/src shared/devstack/src \
	services/contracts/src services/payments/src services/notifications/src
LIFECYCLES ?= 50
SEED ?= 1

.PHONY: help uv sync run demo test lint format schemas schemas-check unit deploy-check chaos bench

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

uv:
	@command -v uv >/dev/null 2>&1 || test -x "$(UV)" || python3 -m pip install --quiet --user uv

sync: uv ## install the workspace (from uv.lock) into .venv
	@$(UV) sync --frozen --all-packages

run: sync ## start the whole system locally (broker, Stripe stand-in, mail sink, 3 services); TRACES=1 writes spans to .data/traces
	@$(UV) run --no-sync python -m cairn_devstack.up $(if $(TRACES),--traces)

demo: ## walk the vertical slice through the APIs of a running `make run`
	@$(UV) run --no-sync python -m cairn_devstack.demo

test: sync lint schemas-check ## install what is needed and run every test
	@$(UV) run --no-sync pytest

lint: sync ## ruff and mypy --strict
	@$(UV) run --no-sync ruff check .
	@$(UV) run --no-sync ruff format --check .
	@$(UV) run --no-sync mypy $(PY_SOURCES)

format: sync ## apply ruff's fixes and formatting
	@$(UV) run --no-sync ruff check --fix .
	@$(UV) run --no-sync ruff format .

schemas: sync ## export the event JSON Schemas into shared/schemas/jsonschema
	@$(UV) run --no-sync python -m cairn_schemas.export shared/schemas/jsonschema

schemas-check: sync ## fail if the exported JSON Schemas are out of date
	@$(UV) run --no-sync python -m cairn_schemas.export --check shared/schemas/jsonschema

chaos: sync ## chaos run: make chaos LIFECYCLES=1000 SEED=1 [FAULT_INTERVAL=1] [KEEP=1] [LOG_LEVEL=INFO] (report; non-zero on violations)
	@$(UV) run --no-sync python -m tests.chaos --lifecycles $(LIFECYCLES) --seed $(SEED) $(if $(FAULT_INTERVAL),--fault-interval $(FAULT_INTERVAL)) $(if $(KEEP),--keep-on-failure) $(if $(LOG_LEVEL),--log-level $(LOG_LEVEL))

BENCH_ARGS = $(if $(filter command line,$(origin LIFECYCLES)),--lifecycles $(LIFECYCLES)) $(if $(CONCURRENCY),--concurrency $(CONCURRENCY)) $(if $(DURATION),--duration $(DURATION)) $(if $(INSTANCES),--instances $(INSTANCES)) $(if $(RATE),--rate $(RATE))
bench: sync ## benchmark, not a test (~5 min): make bench LIFECYCLES=… CONCURRENCY=16 DURATION=30 INSTANCES=1,2 RATE=0
	@$(UV) run --no-sync python -m tests.bench $(BENCH_ARGS)

deploy-check: sync ## render and validate the Kubernetes manifests and Dockerfiles (offline)
	@deploy/check.sh

unit: sync ## only the fast tests (no broker, no database)
	@$(UV) run --no-sync pytest -m "not integration and not e2e" shared/schemas services/contracts/tests/unit services/payments/tests/unit services/notifications/tests/unit
