# dealstream developer entry points. `make demo` and `make test` work on a fresh machine with
# Python >= 3.11, Java 17 and Maven: the virtualenv, the Kafka jars and the broker come from here.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DS     := $(BIN)/dealstream
PYTEST_ARGS ?=

.PHONY: help venv demo test unit integration lint typecheck bench broker-start broker-stop clean

help:
	@echo "make demo   - run the POS path end to end on the embedded defaults and print a summary"
	@echo "make test   - lint, type-check and run every test (starts and stops the local broker)"
	@echo "make bench  - throughput/latency benchmarks (writes bench/results/latest.json)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(DS) demo

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

unit: venv
	$(BIN)/pytest -m "not integration" $(PYTEST_ARGS)

# Starts the local broker unless one already answers, and stops it afterwards only if it
# started it here.
integration: venv
	@if $(DS) broker status >/dev/null 2>&1; then started=0; else started=1; $(DS) broker start; fi; \
	$(BIN)/pytest -m integration $(PYTEST_ARGS); rc=$$?; \
	if [ $$started = 1 ]; then $(DS) broker stop; fi; exit $$rc

test: venv lint typecheck
	@if $(DS) broker status >/dev/null 2>&1; then started=0; else started=1; $(DS) broker start; fi; \
	$(BIN)/pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$started = 1 ]; then $(DS) broker stop; fi; \
	if [ $$rc = 5 ]; then echo "pytest collected no tests: that is a failure here"; exit 1; fi; \
	exit $$rc

bench: venv
	$(BIN)/python -m bench.run

broker-start: venv
	$(DS) broker start

broker-stop: venv
	$(DS) broker stop

clean:
	rm -rf .local .pytest_cache .mypy_cache .ruff_cache
