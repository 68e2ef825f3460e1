"""Synthetic traders and the load generator (`make load`): clients of the server like any
other, over the native protocol.

    traders      the trading roles and the market they trade in
    connections  the load client and the server process it starts
    pricefeed    the admin's mark walk with jumps
    report       statistics, CPU use, the report
    load         the run: setup, tasks, main (python -m engine.sim.load)
    synthetic    the seeded command flow the benchmarks drive the core with
"""
