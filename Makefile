# Fresh machine: `make run` (paper broker, no token) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run test lint bench train backtest clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $(STAMP)

# the test tools (pytest, TA-Lib, Ray, the mt5linux bridge, ruff) only where tests or benchmarks run
$(TEST_STAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[test]'
	touch $(TEST_STAMP)

run: $(STAMP)
	$(PY) main.py run $(ARGS)

test: $(TEST_STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(TEST_STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

bench: $(TEST_STAMP)
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b --json; done

DATA ?= ../shared/data/xauusd_m15.parquet
train: $(STAMP)
	$(PY) main.py train --data $(DATA) $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
