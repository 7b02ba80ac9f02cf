# Two commands do all the set-up: `make run` serves the API, `make test` checks everything.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check -q

.DEFAULT_GOAL := help
.PHONY: help run dev test lint typecheck pytest fuzz bench profile e2e lock clean build-ApiFunction

help:
	@echo "make run    serve the API on http://localhost:3000 (in-memory store unless SQLITE_PATH is set)"
	@echo "make test   lint, type-check and run the whole test suite"
	@echo "make fuzz   a long schemathesis run against the OpenAPI document"
	@echo "make bench  throughput, latency and memory beside bare Flask and Express + better-sqlite3"
	@echo "make profile  where a request's time goes (cProfile; python -m bench.profile --py-spy)"
	@echo "make e2e    end-to-end checks: newman collection and the docs page in a browser"
	@echo "make dev    flask's development server with the reloader"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.run-installed: requirements.txt | $(BIN)/python
	$(PIP) install -r requirements.txt
	@touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(PIP) install -r requirements-dev.txt
	@touch $@ $(VENV)/.run-installed

run: $(VENV)/.run-installed
	$(BIN)/python app.py

dev: $(VENV)/.run-installed
	$(BIN)/flask run --debug

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/cfn-lint template.yaml

typecheck: $(VENV)/.dev-installed
	$(BIN)/mypy

# The HTTP-level suites again with the DynamoDB store (moto's server, started by the fixtures).
HTTP_SUITES := tests/test_customers_api.py tests/test_paging.py tests/test_concurrency.py \
	tests/test_openapi.py tests/test_races.py tests/test_hostile_input.py \
	tests/test_business_api.py tests/test_security.py \
	tests/test_input_rules.py tests/test_problem_types.py \
	tests/test_conditional.py

pytest: $(VENV)/.dev-installed
	$(BIN)/pytest -q
	$(BIN)/pytest -q --store=dynamodb $(HTTP_SUITES)

test: lint typecheck pytest

# wrk is installed from Debian by the benchmark itself when missing; the seed's stack
# (Express + better-sqlite3, measured beside the service) from bench/express's lockfile.
bench: $(VENV)/.dev-installed bench/express/node_modules/.installed
	$(BIN)/python -m bench.run

bench/express/node_modules/.installed: bench/express/package.json bench/express/package-lock.json
	cd bench/express && npm ci --no-audit --no-fund
	@touch $@

profile: $(VENV)/.dev-installed
	$(BIN)/python -m bench.profile

# `sam build` calls this with ARTIFACTS_DIR set: the Lambda package, service modules only.
SERVICE_MODULES := app.py business_client.py business_normalize.py config.py db.py \
	dynamo_store.py jsonio.py lambda_handler.py logs.py openapi.py problems.py security.py \
	server.py customers
# granian, the server for `make run`, has no use on Lambda.
build-ApiFunction:
	mkdir -p "$(ARTIFACTS_DIR)"
	grep -v '^granian==' requirements.txt > "$(ARTIFACTS_DIR)/.requirements.txt"
	python3 -m pip install --quiet --disable-pip-version-check --target "$(ARTIFACTS_DIR)" \
		--platform manylinux2014_aarch64 --implementation cp --python-version 3.11 \
		--only-binary=:all: -r "$(ARTIFACTS_DIR)/.requirements.txt"
	rm "$(ARTIFACTS_DIR)/.requirements.txt"
	cp -R $(SERVICE_MODULES) "$(ARTIFACTS_DIR)/"

# Debian's Chromium for the docs check (installed when missing), newman and playwright-core
# from package-lock.json (npm ci when node_modules is missing or older than the lock).
e2e: $(VENV)/.run-installed node_modules/.installed
	@if [ ! -x /usr/bin/chromium ]; then \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update && \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; \
	fi
	bash e2e/run.sh

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

fuzz: $(VENV)/.dev-installed
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-400} $(BIN)/pytest -q tests/test_fuzz.py

lock: $(VENV)/.dev-installed
	$(BIN)/pip-compile -q --strip-extras --no-emit-index-url --no-emit-find-links -o requirements.txt requirements.in
	$(BIN)/pip-compile -q --strip-extras --no-emit-index-url --no-emit-find-links -o requirements-dev.txt requirements-dev.in

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
