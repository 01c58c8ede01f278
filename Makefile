# The two commands of the README: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
OUT ?= out/demo
PYTEST_ARGS ?=

.PHONY: venv demo test lint bench clean

venv:
	@VENV=$(VENV) scripts/bootstrap.sh

demo: venv
	$(PY) -m robot_memory.cli demo --output $(OUT)

test: venv
	$(PY) -m pytest $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

bench: venv
	$(PY) bench/bench_sim.py --output out/bench

clean:
	rm -rf out build install log .pytest_cache
