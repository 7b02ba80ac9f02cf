# Two commands do all the set-up: `make run` serves the API, `make test` checks everything.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check -q

.DEFAULT_GOAL := help
.PHONY: help run dev moto test lint typecheck pytest redis-server fuzz bench profile e2e lock clean build-ApiFunction build-DeliveryFunction

help:
	@echo "make run    serve the API on http://localhost:3000 (in-memory store unless SQLITE_PATH is set)"
	@echo "make test   lint, type-check and run the whole test suite"
	@echo "make fuzz   a long schemathesis run against the OpenAPI document"
	@echo "make bench  throughput, latency and memory beside bare Flask, Express + better-sqlite3"
	@echo "            and FastAPI on uvicorn;"
	@echo "            bulk import against a bare executemany"
	@echo "make profile  where a request's time goes (cProfile; python -m bench.profile --py-spy)"
	@echo "make e2e    end-to-end checks: newman with and without keys, the OpenAPI linters,"
	@echo "            clients generated in TypeScript and Java, Schemathesis, the docs page"
	@echo "            in a browser, the commands of README.md and docs/"
	@echo "make dev    flask's development server with the reloader"
	@echo "make moto   a local DynamoDB endpoint (moto) on 127.0.0.1:$(MOTO_PORT)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.run-installed: requirements.txt | $(BIN)/python
	$(PIP) install -r requirements.txt
	@touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(PIP) install -r requirements-dev.txt
	@touch $@ $(VENV)/.run-installed

# The SAM CLI in a virtualenv of its own: it pins boto3 and others to other versions.
SAM_VENV := .venv-sam
$(SAM_VENV)/.installed: requirements-sam.txt
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip --disable-pip-version-check -q install -r requirements-sam.txt
	@touch $@

run: $(VENV)/.run-installed
	$(BIN)/python app.py

dev: $(VENV)/.run-installed
	$(BIN)/flask run --debug

# moto's server (DynamoDB, SSM) on loopback, for running the service against a local
# endpoint; moto is a development tool, so this installs requirements-dev.txt first.
MOTO_PORT ?= 5000
moto: $(VENV)/.dev-installed
	$(BIN)/moto_server -H 127.0.0.1 -p $(MOTO_PORT)

# The template twice, offline and without AWS credentials: cfn-lint, then `sam validate
# --lint` (SAM's own translation of the template, and cfn-lint on the result).
lint: $(VENV)/.dev-installed $(SAM_VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/cfn-lint template.yaml
	SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam validate --lint --template template.yaml

typecheck: $(VENV)/.dev-installed
	$(BIN)/mypy


# Debian's redis-server for the shared-limit tests (installed when missing); the tests
# start their own servers on free loopback ports and stop them.
redis-server:
	@if ! command -v redis-server >/dev/null; then \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update && \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server; \
	fi

pytest: $(VENV)/.dev-installed redis-server
	$(BIN)/pytest -q
	$(BIN)/pytest -q --store=dynamodb tests/http  # the HTTP level again, on DynamoDB (moto server)

test: lint typecheck pytest

# wrk is installed from Debian by the benchmark itself when missing; the seed's stack
# (Express + better-sqlite3, measured beside the service) from bench/express's lockfile;
# the Python peer (FastAPI on uvicorn) from requirements-dev.txt.
bench: $(VENV)/.dev-installed bench/express/node_modules/.installed
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.bulk_import

bench/express/node_modules/.installed: bench/express/package.json bench/express/package-lock.json
	cd bench/express && npm ci --no-audit --no-fund
	@touch $@

profile: $(VENV)/.dev-installed
	$(BIN)/python -m bench.profile

# `sam build` calls this with ARTIFACTS_DIR set: the Lambda package, service modules only.
# granian, the server for `make run`, and its event loop uvloop have no use on Lambda.
build-ApiFunction:
	mkdir -p "$(ARTIFACTS_DIR)"
	grep -v -e '^granian==' -e '^uvloop==' requirements.txt > "$(ARTIFACTS_DIR)/.requirements.txt"
	python3 -m pip install --quiet --disable-pip-version-check --target "$(ARTIFACTS_DIR)" \
		--platform manylinux2014_aarch64 --implementation cp --python-version 3.11 \
		--only-binary=:all: -r "$(ARTIFACTS_DIR)/.requirements.txt"
	rm "$(ARTIFACTS_DIR)/.requirements.txt"
	# The service as pyproject.toml describes the package: what the tree holds, no list here.
	python3 -m pip install --quiet --disable-pip-version-check --no-deps --no-compile \
		--target "$(ARTIFACTS_DIR)" .
	rm -rf "$(ARTIFACTS_DIR)"/customer_api-*.dist-info "$(ARTIFACTS_DIR)/bin" build *.egg-info

# The stream function is the same package with another entry point.
build-DeliveryFunction: build-ApiFunction

# Debian's packages, those missing installed in one go: Chromium for the docs check, a JDK
# and the Jakarta annotations for the generated Java client (path:package pairs). newman,
# playwright-core, Spectral, Redocly, openapi-typescript, openapi-fetch and TypeScript from
# package-lock.json (npm ci when node_modules is missing or older than the lock);
# openapi-generator, Schemathesis and the development tools for the README walk's
# `make moto` from requirements-dev.txt.
E2E_DEBIAN := /usr/bin/chromium:chromium /usr/bin/javac:default-jdk-headless \
	/usr/share/java/jakarta-annotation-api.jar:libjakarta-annotation-api-java
e2e: $(VENV)/.dev-installed node_modules/.installed
	@missing=; \
	for pair in $(E2E_DEBIAN); do [ -e "$${pair%%:*}" ] || missing="$$missing $${pair#*:}"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update && \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; \
	fi
	bash e2e/run.sh

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

fuzz: $(VENV)/.dev-installed
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-400} $(BIN)/pytest -q tests/unit/test_fuzz.py

# The development pins hold setuptools (and pip, --allow-unsafe): the tests build the
# package without build isolation, with the setuptools pyproject.toml asks for.
lock: $(VENV)/.dev-installed
	$(BIN)/pip-compile -q --strip-extras --no-emit-index-url --no-emit-find-links -o requirements.txt requirements.in
	$(BIN)/pip-compile -q --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links -o requirements-dev.txt requirements-dev.in
	$(BIN)/pip-compile -q --strip-extras --no-emit-index-url --no-emit-find-links -o requirements-sam.txt requirements-sam.in

clean:
	rm -rf $(VENV) $(SAM_VENV) bench/.runtime-venv bench/.openapi-venv .pytest_cache .mypy_cache .ruff_cache
