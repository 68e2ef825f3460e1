# Two commands on a fresh machine: `make run` and `make test`. Each creates .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test bench feed clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m engine run

test: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) -m engine.bench

feed: $(STAMP)
	$(PY) -m replay feed $(FILE)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
