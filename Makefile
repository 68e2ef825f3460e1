# Two commands on a fresh machine: `make run` and `make test`. Each creates .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-slow bench feed load replay clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

# the venue with a moving market; ARGS passes options through (ARGS="--no-market": empty; see
# README for --port, --clock, --scenario)
run: $(STAMP)
	$(PY) -m engine serve --market $(ARGS)

# the fast suite; the slow end-to-end, load and browser tests run with `make test-slow`
test: $(STAMP)
	$(PY) -m pytest -m "not slow"

test-slow: $(STAMP)
	$(PY) -m pytest -m slow

# benchmarks print figures (the README quotes them); they are not tests
bench: $(STAMP)
	$(PY) -m engine.bench
	$(PY) -m engine.bench risk
	$(PY) -m engine.bench funding
	$(PY) -m engine.bench tokens
	$(PY) -m engine.bench replay
	$(PY) -m engine.bench market

feed: $(STAMP)
	$(PY) -m replay feed $(FILE) $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis

# synthetic traders against a server this starts itself (see README for the fixed settings)
load: $(STAMP)
	$(PY) -m engine.sim.load $(ARGS)

# verify a recorded log: make replay LOG=var/engine.log
replay: $(STAMP)
	$(PY) -m replay verify $(LOG) $(ARGS)
