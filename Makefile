# Two commands on a fresh machine: `make run` and `make test`. Each creates .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# the compiled core (mypyc; pure Python without a C compiler): build_core.py, rebuilt when
# engine/core changes; PERPENGINE_PURE=1 runs the pure core all the same
CORE := engine/core/compiled.json
FTSTAMP := $(VENV)/.installed-freqtrade

.DEFAULT_GOAL := core  # `make`: install and build the core
.PHONY: core run test test-slow bench feed load replay clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

$(CORE): $(STAMP) $(wildcard engine/core/*.py)
	$(PY) build_core.py

core: $(CORE)

# the venue with a moving market; ARGS passes options through (ARGS="--no-market": empty; see
# README for --port, --clock, --scenario)
run: $(STAMP) $(CORE)
	$(PY) -m engine serve --market $(ARGS)

# the fast suite; the slow end-to-end, load and browser tests run with `make test-slow`
test: $(STAMP) $(CORE)
	$(PY) -m pytest -m "not slow"

# the slow suite also runs a real freqtrade against the Binance API: installed on first use
$(FTSTAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[dev,freqtrade]'
	touch $(FTSTAMP)

test-slow: $(FTSTAMP) $(CORE)
	$(PY) -m pytest -m slow

# benchmarks print figures, progress, then one table (the README quotes it); not tests
bench: $(STAMP) $(CORE)
	$(PY) -m engine.bench all
	$(PY) -m engine.bench conditional
	$(PY) -m engine.bench market
	$(PY) -m engine.bench api

feed: $(STAMP) $(CORE)
	$(PY) -m replay feed $(FILE) $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .mypy_cache engine/core/*.so $(CORE)

# synthetic traders against a server this starts itself (see README for the fixed settings)
load: $(STAMP) $(CORE)
	$(PY) -m engine.sim.load $(ARGS)

# verify a recorded log: make replay LOG=var/engine.log
replay: $(STAMP) $(CORE)
	$(PY) -m replay verify $(LOG) $(ARGS)
