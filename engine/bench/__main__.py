"""`python -m engine.bench [WHAT] [options]`: the benchmarks (they print figures; not tests).

    book | core | rss | all     the book, the full core, resident memory (engine.bench.core)
    risk                        the risk consumer (engine.bench.risk)
    funding                     index, mark, premium and settlement (engine.bench.funding)
    tokens                      leveraged tokens (engine.bench.tokens)
    replay                      verify, re-drive, snapshots (engine.bench.replay)
    api                         Binance's REST API against the native protocol (engine.bench.api)
"""
import sys

from engine.bench import api, core, funding, replay, risk, tokens

SUITES = {"risk": risk.main, "funding": funding.main, "tokens": tokens.main,
          "replay": replay.main, "api": api.main}

args = sys.argv[1:]
if args and args[0] in SUITES:
    sys.exit(SUITES[args[0]](args[1:]) or 0)
sys.exit(core.main(args))
