# Newcomer commands: `make demo` and `make test`. Both create .venv if it is missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint docs bench clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): $(VENV)/bin/python pyproject.toml
	$(PY) -m pip install --quiet -e ".[test,docs,datasets]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m braincoder.demo --out demo_output

lint: $(STAMP)
	$(VENV)/bin/ruff check .

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q -n 2 --dist loadfile --doctest-modules tests braincoder
	$(MAKE) docs

docs: $(STAMP)
	$(VENV)/bin/sphinx-build -W --keep-going -b html -q docs docs/_build/html

bench: $(STAMP)
	$(PY) -m pip install --quiet -e ".[bench,dask]"
	$(PY) benchmarks/bench_fit.py
	$(PY) benchmarks/bench_real.py
	$(PY) benchmarks/bench_scale.py
	$(PY) benchmarks/bench_weights.py

clean:
	rm -rf docs/_build docs/auto_examples docs/generated demo_output
