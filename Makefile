# Tidings: `make run` serves the app, `make test` runs the whole suite.
# Both install what they need first; nothing has to be set up by hand.

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 127.0.0.1
PORT ?= 8000

# Django 6.1 needs Python 3.12 or newer. Look for one on PATH, then under pyenv.
PYTHON_CANDIDATES := python3.13 python3.12 python3.14 \
	$(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3) \
	$(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3) \
	$(wildcard /root/.pyenv/versions/3.13*/bin/python3) \
	$(wildcard /root/.pyenv/versions/3.12*/bin/python3) \
	python3
BASE_PYTHON ?= $(shell for c in $(PYTHON_CANDIDATES); do \
	if command -v $$c >/dev/null 2>&1 && $$c -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then \
	command -v $$c; break; fi; done)

# What the test suite talks to; override on the command line or in the environment.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/tidings
TEST_REDIS_URL ?= redis://127.0.0.1:6379/9

.PHONY: help run test lint typecheck check-python install install-dev assets clean

help:
	@echo "make run    install, migrate, load the presets (and, in the demo, generated daily counts), create a demo staff user, serve on http://$(HOST):$(PORT)/"
	@echo "make test   install and run the whole test suite against PostgreSQL and Redis"
	@echo "make lint   ruff check and format check;  make typecheck  mypy"

check-python:
	@if [ -z "$(BASE_PYTHON)" ]; then \
		echo "Tidings needs Python 3.12 or newer (3.13 recommended) and none was found." >&2; \
		echo "Install one, e.g. 'pyenv install 3.13' or your OS package 'python3.13 python3.13-venv'," >&2; \
		echo "or point BASE_PYTHON at it: make run BASE_PYTHON=/path/to/python3.13" >&2; \
		exit 1; fi

$(VENV)/.installed: requirements.txt | check-python
	@test -x $(PY) || $(BASE_PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

$(VENV)/.installed-dev: requirements-dev.txt $(VENV)/.installed
	$(PIP) install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

install: $(VENV)/.installed node_modules/.installed
install-dev: $(VENV)/.installed-dev node_modules/.installed
assets: node_modules/.installed

# With DATABASE_URL and REDIS_URL set, run the full stack (web, worker, beat) under
# honcho; otherwise the embedded demo: SQLite in var/, tasks in-process, mail to
# /dev/outbox/. `make run` is a local run, never production (that is the container
# image, whose entrypoint creates no demo user): DEBUG defaults to true in both modes,
# and the demo staff user is created with --force even if DEBUG=false was asked for.
# Only the embedded demo gets generated daily counts (generate_demo_history), so its
# dashboard has weeks of history; a full-stack run keeps the counts it really has.
run: install
	@if [ -n "$$DATABASE_URL" ] && [ -n "$$REDIS_URL" ]; then \
		set -e; \
		export DEBUG=$${DEBUG:-true} SITE_URL=$${SITE_URL:-http://$(HOST):$(PORT)}; \
		$(PY) manage.py migrate --noinput; \
		$(PY) manage.py collectstatic --noinput --verbosity 0; \
		$(PY) manage.py load_presets; \
		$(PY) manage.py create_demo_user --force; \
		PATH="$(CURDIR)/$(VENV)/bin:$$PATH" PORT=$(PORT) HOST=$(HOST) exec $(VENV)/bin/honcho start -f Procfile; \
	else \
		set -e; \
		export DEBUG=$${DEBUG:-true} SITE_URL=$${SITE_URL:-http://$(HOST):$(PORT)}; \
		$(PY) manage.py migrate --noinput; \
		$(PY) manage.py load_presets; \
		$(PY) manage.py generate_demo_history; \
		$(PY) manage.py create_demo_user; \
		exec $(PY) manage.py runserver $(HOST):$(PORT); \
	fi

# The environment the suite (and mypy's Django plugin, which loads the settings) runs in.
TEST_ENV = DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} \
	REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
	SECRET_KEY=$${SECRET_KEY:-test-secret-key} \
	SUPPRESSION_KEY=$${SUPPRESSION_KEY:-test-suppression-key} \
	SITE_URL=$${SITE_URL:-https://tidings.test} \
	ALLOWED_HOSTS=$${ALLOWED_HOSTS:-testserver,localhost,127.0.0.1} \
	MAILER=$${MAILER:-outbox} \
	STATIC_MANIFEST=false

test: install-dev
	@$(TEST_ENV) $(VENV)/bin/pytest $(ARGS)

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install-dev
	@$(TEST_ENV) $(VENV)/bin/mypy .

clean:
	rm -rf $(VENV) node_modules staticfiles var .pytest_cache .mypy_cache .ruff_cache
