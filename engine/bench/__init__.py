"""Benchmarks: `python -m engine.bench ...` and `make bench`. They print figures with what was
measured; they assert nothing (the tests do)."""
