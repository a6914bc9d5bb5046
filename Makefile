# xero-crm-sync: every command a developer needs. Everything installs into .venv and var/ inside the clone.
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9

# Caches stay inside the clone (CI caches nothing outside it).
export UV_CACHE_DIR := $(CURDIR)/.cache/uv
export PIP_NO_CACHE_DIR := 1
export PLAYWRIGHT_BROWSERS_PATH := $(CURDIR)/.cache/ms-playwright
export HYPOTHESIS_STORAGE_DIRECTORY := $(CURDIR)/.cache/hypothesis

# Airflow runs from the clone: its home, DAGs and plugins are here, never in ~/airflow.
export AIRFLOW_HOME := $(CURDIR)/var/airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False

# Secrets generated once by `make env` (never committed): the token key and Airflow's own keys.
-include .env
export

.PHONY: help install env run test lint sandbox airflow bench chaos lock clean browser

help:
	@echo "make run      install, start the sandbox, connect, run a full sync cycle, print a summary"
	@echo "make test     install and run the whole test suite (SQLite and PostgreSQL)"
	@echo "make sandbox  serve the local Xero sandbox on http://127.0.0.1:8765 (demo organisation)"
	@echo "make airflow  Airflow standalone (UI on http://127.0.0.1:8080) wired to the sandbox"
	@echo "make bench    benchmark import and push at 1k/10k/100k contacts -> docs/BENCHMARKS.md"
	@echo "make chaos    fault, crash and bad-input campaigns; prints the difference from a clean run"
	@echo "make lint     ruff"

install: $(VENV)/.installed

# The clone is a development checkout: runtime (requirements.txt, what the image installs) and development and test
# packages (requirements-dev.txt, constrained by the runtime pins) go into one .venv.
# The project's Airflow provider (providers/xero: the `xero` connection type and XeroHook) is a distribution of its
# own, because Airflow discovers providers by their entry point; its dependencies are the pinned ones above.
$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml providers/xero/pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@$(BIN)/pip install -q "uv==$(UV_VERSION)"
	$(BIN)/uv pip install -q --python $(BIN)/python -r requirements.txt -r requirements-dev.txt
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e . -e providers/xero
	@touch $@

# .env is generated once (never committed, mode 0600): the Fernet key that encrypts Xero secrets at rest
# in the CRM database, and Airflow's own Fernet key and JWT secret. docker-compose.yaml reads the same file.
KEYGEN := python3 -c "import base64,os;print(base64.urlsafe_b64encode(os.urandom(32)).decode())"
env: .env
.env:
	@umask 077 && { \
	  echo "XERO_CRM_FERNET_KEY=$$($(KEYGEN))"; \
	  echo "AIRFLOW__CORE__FERNET_KEY=$$($(KEYGEN))"; \
	  echo "AIRFLOW__API_AUTH__JWT_SECRET=$$($(KEYGEN))"; \
	  echo "AIRFLOW__API__SECRET_KEY=$$($(KEYGEN))"; \
	} > $@
	@echo "wrote .env (keys generated for this clone; keep it private)"

run: install .env
	$(BIN)/python -m xero_crm_sync.cli demo
	@# Every log and database file the demo wrote, searched for the tokens and secrets it used (none may appear).
	$(BIN)/python -m tests.connections.secret_scan

# Two workers (pytest-xdist), one test file each at a time: most tests wait on real Airflow processes, servers and
# Xero's pacing rather than on the CPU, so the suite takes about 10 minutes instead of 19 on two cores.
# `make test TEST_WORKERS=0` runs it in one process.
TEST_WORKERS ?= 2
test: install .env browser
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

# The status-page tests drive Debian's Chromium through Playwright (Playwright's own browser download does not
# work here). Installed once per machine; skipped when already present.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

sandbox: install
	$(BIN)/python -m xero_sandbox serve --port 8765 --seed 1 --contacts 500

# `airflow standalone` starts its components as `airflow` processes found on PATH: the venv's bin/ goes first.
airflow: install .env
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m xero_crm_sync airflow-standalone

bench: install .env
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.many_orgs

chaos: install .env
	$(BIN)/python -m tests.chaos.report --seeds $(or $(SEEDS),20)

# Re-pin requirements.txt from requirements.in (runtime) and requirements-dev.txt from requirements-dev.in
# (development and tests, constrained by the runtime pins). Run after editing either .in file.
lock: install
	$(BIN)/uv pip compile requirements.in --python-version 3.11 --no-header -o requirements.txt
	$(BIN)/uv pip compile requirements-dev.in --python-version 3.11 --no-header -o requirements-dev.txt

clean:
	rm -rf var .pytest_cache .ruff_cache test-artifacts
