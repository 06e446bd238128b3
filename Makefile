# The two set-up commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test install install-test lint protos bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	@echo "Installing Switchyard and the demo's dependencies into $(VENV) ..."
	$(BIN)/pip install --quiet -e ".[demo]"

install-test: $(BIN)/python
	$(BIN)/pip install --quiet -e ".[test]"

# Installs, fetches GraphiQL's assets once (so the IDE works offline), runs the demo.
demo: install
	@echo "Fetching GraphiQL's assets (once) so the IDE loads from the gateway ..."
	@$(BIN)/switchyard ide fetch >/dev/null || echo "GraphiQL assets not fetched: the IDE will load from the CDN"
	$(BIN)/switchyard demo

test: install-test
	$(BIN)/python -m pytest

lint: install-test
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy .

protos: install-test
	$(BIN)/python -m protos.generate

bench: install
	$(BIN)/python -m bench.fanout
