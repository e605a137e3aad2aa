# Mathia: `make run` serves the app on an embedded stack; `make test` runs the whole suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test check lint format typecheck bench lock clean help

help:
	@echo "make run    set everything up and serve Mathia at http://127.0.0.1:$${PORT:-8000}"
	@echo "make test   set everything up and run the whole test suite (lint and types included)"
	@echo "make bench  run the benchmarks in bench/"
	@echo "make lock   re-resolve requirements*.lock from pyproject.toml"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Mathia needs Python 3.11 or newer; this is " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python requirements-dev.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements-dev.lock
	@touch $(STAMP)

run: $(STAMP)
	@$(BIN)/python -m mathia.embedded.stack

test: $(STAMP) check
	@$(BIN)/python -m pytest $(PYTEST_ARGS)

check: $(STAMP) lint typecheck

lint: $(STAMP)
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .

format: $(STAMP)
	@$(BIN)/ruff format .
	@$(BIN)/ruff check --fix .

typecheck: $(STAMP)
	@$(BIN)/mypy

bench: $(STAMP)
	@$(BIN)/python bench/startup_and_latency.py
	@$(BIN)/python bench/fanout.py
	@$(BIN)/python bench/ai_stream.py
	@$(BIN)/python bench/assistant_runner_choice.py
	@$(BIN)/python bench/router.py
	@$(BIN)/python bench/reminders.py

lock: $(BIN)/python
	$(BIN)/python -m pip install --quiet "pip-tools>=7.5"
	$(BIN)/pip-compile --quiet --strip-extras --generate-hashes --allow-unsafe --no-emit-index-url --no-emit-find-links -o requirements.lock pyproject.toml
	$(BIN)/pip-compile --quiet --strip-extras --generate-hashes --allow-unsafe --no-emit-index-url --no-emit-find-links --extra dev -c requirements.lock -o requirements-dev.lock pyproject.toml

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
