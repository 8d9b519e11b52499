# Fresh machine: `make run` (paper broker, no token) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run test lint bench train backtest clean

$(STAMP): pyproject.toml
	@echo "== setting up $(VENV): Python packages the bot uses (polars, XGBoost, aiogram, matplotlib, ...);"
	@echo "   about a minute the first time (longer on a slow link), then only when pyproject.toml changes"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	@touch $(STAMP)
	@echo "== $(VENV) ready: commands run as $(PY) main.py ... (or after: source $(VENV)/bin/activate)"

# the test tools (pytest, TA-Lib, Ray, the mt5linux bridge, ruff, mypy) only where tests or benchmarks run
$(TEST_STAMP): $(STAMP)
	@echo "== installing the test tools (pytest, TA-Lib, Ray, ruff, mypy, the mt5linux bridge): a few minutes, once"
	$(PY) -m pip install -q -e '.[test]'
	@touch $(TEST_STAMP)

run: $(STAMP)
	$(PY) main.py run $(ARGS)

test: $(TEST_STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(TEST_STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

bench: $(TEST_STAMP)
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b --json; done

# `make train` / `make backtest` on a bars file: DATA=FILE, more flags in ARGS="--from 2025-09-01 ..."
DATA ?= ../shared/data/xauusd_m15.parquet
train: $(STAMP)
	$(PY) main.py train --data $(DATA) $(ARGS)

backtest: $(STAMP)
	$(PY) main.py backtest --data $(DATA) $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
