"""`python -m engine.bench [WHAT] [options]`: the benchmarks (they print figures; not tests).

    book | core | rss | all     the book, the full core, resident memory (engine.bench.core)
    risk                        the risk consumer (engine.bench.risk)
    funding                     index, mark, premium and settlement (engine.bench.funding)
    tokens                      leveraged tokens (engine.bench.tokens)
    replay                      verify, re-drive, snapshots (engine.bench.replay)
    conditional                 the core with and without conditional orders
    market                      the market simulator's own CPU (engine.bench.market)
"""
import sys

from engine.bench import conditional, core, funding, market, replay, risk, tokens

SUITES = {"risk": risk.main, "funding": funding.main, "tokens": tokens.main,
          "replay": replay.main, "conditional": conditional.main, "market": market.main}

args = sys.argv[1:]
if args and args[0] in SUITES:
    sys.exit(SUITES[args[0]](args[1:]) or 0)
sys.exit(core.main(args))
