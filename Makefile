# Two commands on a fresh machine: `make run` and `make test`. Each creates .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
FTSTAMP := $(VENV)/.installed-freqtrade

.PHONY: run test test-slow bench feed load replay clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m engine serve

# the fast suite; the slow end-to-end, load and browser tests run with `make test-slow`
test: $(STAMP)
	$(PY) -m pytest -m "not slow"

# the slow suite also runs a real freqtrade against the Binance API: installed on first use
$(FTSTAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[dev,freqtrade]'
	touch $(FTSTAMP)

test-slow: $(FTSTAMP)
	$(PY) -m pytest -m slow

# benchmarks print figures (the README quotes them); they are not tests
bench: $(STAMP)
	$(PY) -m engine.bench
	$(PY) -m engine.bench risk
	$(PY) -m engine.bench funding
	$(PY) -m engine.bench tokens
	$(PY) -m engine.bench replay
	$(PY) -m engine.bench api

feed: $(STAMP)
	$(PY) -m replay feed $(FILE)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis

# synthetic traders against a server this starts itself (see README for the fixed settings)
load: $(STAMP)
	$(PY) -m engine.sim.load $(ARGS)

# verify a recorded log: make replay LOG=var/engine.log
replay: $(STAMP)
	$(PY) -m replay verify $(LOG)
