# Actiondesk: `make run` sets everything up and serves the demo; `make test` runs the whole suite.
SHELL := /bin/sh
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
HOST ?= 127.0.0.1
PORT ?= 8000
# The settings read them too: the demo's upstream allow-lists follow HOST and PORT.
export HOST PORT
# Where the demo is reached (printed, and where its tool calls go): HOST, or loopback when HOST
# binds every address; IPv6 literals in brackets.
URL_HOST := $(if $(filter 0.0.0.0 :: [::],$(HOST)),127.0.0.1,$(if $(findstring :,$(HOST)),[$(patsubst [%],%,$(HOST))],$(HOST)))
BASE_URL ?= http://$(URL_HOST):$(PORT)
# pytest-xdist workers; "auto" uses every core.
WORKERS ?= auto

.PHONY: run test lint format migrate demo clean help

help:
	@echo "make run    set up .venv, migrate, load the demo and serve on $(BASE_URL)/ (HOST, PORT)"
	@echo "make test   the whole test suite"
	@echo "make lint   ruff and mypy"

$(VENV)/.installed: pyproject.toml
	@python=$$(scripts/find-python) || exit 1; \
	  if [ ! -x $(PY) ] || ! $(PY) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)'; then \
	    echo "Creating $(VENV) with $$python"; rm -rf $(VENV); "$$python" -m venv $(VENV) || exit 1; \
	  fi
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet ".[dev]"
	@touch $@

migrate: $(VENV)/.installed
	$(PY) manage.py migrate --no-input

demo: migrate
	$(PY) manage.py setup_demo --base-url $(BASE_URL)

run: demo
	$(PY) manage.py check --fail-level ERROR
	$(PY) manage.py collectstatic --no-input --verbosity 0
	$(PY) -m config.server --bind $(HOST) --port $(PORT) --websocket_timeout 86400 \
	  --websocket-max-message-size 65536 --websocket-max-frame-size 65536 config.asgi:application

test: $(VENV)/.installed
	$(BIN)/pytest -n $(WORKERS) $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

format: $(VENV)/.installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache staticfiles
