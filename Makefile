# The front door. `make demo` runs the whole stack; `make test` passes the tests.
# Neither needs Docker: see README "Backing services".
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CHROMIUM ?= /usr/bin/chromium

.PHONY: help install demo setup test lint format bench browser edge-tools compose-tools lock clean sale sale-ui traces docs

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-9s %s\n", $$1, $$2}'

# Dependency groups (requirements/*.in): runtime (the services; the image installs only
# this, from runtime.txt), embedded (the launcher's own PostgreSQL/Redis, honcho, psutil),
# loadtest, dev. all.txt locks every group, with the runtime pins taken from runtime.txt.
GROUPS_IN := requirements/runtime.in requirements/embedded.in requirements/loadtest.in requirements/dev.in
LOCK_VENV := /tmp/lock-venv
UV_VERSION := 0.13.9
LOCK := $(LOCK_VENV)/bin/uv pip compile --quiet --generate-hashes --python-version 3.11 \
  --python-platform x86_64-manylinux_2_28 --custom-compile-command "make lock"

$(STAMP): requirements/all.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed (set PYTHON=python3.11)")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "==> installing the locked dependencies (every group) into $(VENV)"
	@$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	@$(PY) -m pip install -q --disable-pip-version-check --require-hashes -r requirements/all.txt
	@touch $@

install: $(STAMP) ## create .venv and install every dependency group from the hashed lock

# EDGE_ENGINE=nginx (make demo, make sale): the edge's data plane is Debian's nginx.
NGINX_TOOLS := $(if $(filter nginx,$(EDGE_ENGINE)),edge-tools)

demo: install $(NGINX_TOOLS) ## set up, seed, open a sale, run every process (edge :8000 is the way in; EDGE_ENGINE=nginx: nginx)
	$(PY) -m common.devstack demo

setup: install ## create databases, migrate and seed, then exit
	$(PY) -m common.devstack setup

browser: ## make sure Debian's chromium is there for the browser test
	@test -x $(CHROMIUM) || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "==> installing Debian's chromium for the browser test"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || { echo "chromium install failed"; exit 1; }; \
	  else echo "The browser test needs Chromium at $(CHROMIUM): apt-get install chromium (or set CHROMIUM=...)"; exit 1; fi; }

edge-tools: ## make sure Debian's nginx (edge export tests, bench) and wrk (bench) are there
	@command -v nginx >/dev/null && command -v wrk >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "==> installing Debian's nginx-light and wrk for the edge's tests and benchmark"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light wrk >/dev/null) \
	      || { echo "nginx-light/wrk install failed"; exit 1; }; \
	  else echo "The edge's tests need nginx, its benchmark wrk: apt-get install nginx-light wrk"; exit 1; fi; }

compose-tools: ## make sure Debian's Docker engine, docker-compose and debootstrap are there (tests/compose)
	@command -v dockerd >/dev/null && command -v docker-compose >/dev/null && command -v debootstrap >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "==> installing Debian's docker.io, docker-compose and debootstrap for the compose test"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io docker-compose debootstrap >/dev/null) \
	      || { echo "docker.io/docker-compose/debootstrap install failed"; exit 1; }; \
	  else echo "The compose test needs a Docker engine, docker-compose and debootstrap: apt-get install docker.io docker-compose debootstrap (else it is skipped)"; fi; }

test: install browser edge-tools compose-tools ## run every test suite against real PostgreSQL and Redis
	CHROMIUM=$(CHROMIUM) $(PY) -m common.devstack test $(ARGS)

lint: install ## ruff check, ruff format --check, import contracts, mypy, the docs site (strict)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	$(VENV)/bin/mkdocs build --strict --site-dir /tmp/strangler-docs-site

format: install ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: install edge-tools ## benchmarks (bench/): memory, edge vs nginx, orders vs legacy, tracing, static page
	$(PY) -m bench.memory
	$(PY) -m bench.edge
	$(PY) -m common.devstack run $(PY) -m bench.orders
	$(PY) -m common.devstack run $(PY) -m bench.static_page
	$(PY) -m common.devstack run $(PY) -m bench.tracing

sale: install $(NGINX_TOOLS) ## load-test the Muskie sale, legacy then strangler (starts the stack if none answers)
	$(PY) -m loadtest run $(ARGS)

sale-ui: install ## Locust's web UI on :8089 against the edge (the stack must be running)
	$(VENV)/bin/locust -f loadtest/locustfile.py --class-picker --web-host 127.0.0.1 \
	  --host $${EDGE_URL:-http://127.0.0.1:$${EDGE_PORT:-8000}} $(ARGS)

docs: install ## serve the docs site on :8008
	$(VENV)/bin/mkdocs serve -a 127.0.0.1:8008

traces: install ## compare a legacy and a strangler Muskie purchase, trace against trace
	$(PY) manage.py traces compare $(ARGS)

# Keeps the pins already in the locks unless an .in file asks otherwise; ARGS=--upgrade
# (or --upgrade-package NAME) moves them. Runtime first: the other groups are constrained
# by it, so the image and .venv run the same versions of what they share.
lock: ## re-pin the hashed locks (requirements/runtime.txt, all.txt) from requirements/*.in
	@test -x $(LOCK_VENV)/bin/uv || { $(PYTHON) -m venv $(LOCK_VENV) \
	  && $(LOCK_VENV)/bin/pip install -q uv==$(UV_VERSION); }
	$(LOCK) $(ARGS) requirements/runtime.in -o requirements/runtime.txt
	$(LOCK) $(ARGS) -c requirements/runtime.txt $(GROUPS_IN) -o requirements/all.txt

clean: ## remove the venv and the embedded databases' data
	rm -rf $(VENV) .data
