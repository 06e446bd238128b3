# The two set-up commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test install install-test lint protos bench bench-full

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

# Issue 10's harness (bench/README.md): the gateway beside the floor and a naive gateway,
# under wrk (installed from Debian's packages when missing). Quick: latency 0, c=16, under
# 5 minutes on 2 cores. Full: latency 0 and 10 ms, c=1/16/64, memory and a 5-minute soak.
bench: install
	$(BIN)/python -m bench.run --quick

bench-full: install
	$(BIN)/python -m bench.run --full
