"""`python -m engine.bench [WHAT] [options]`: the benchmarks (they print figures; not tests).

    (nothing) | all [--quick]   every benchmark, progress on stderr, then one table in the
                                README's form (engine.bench.suite; `make bench`)
    book | core | rss           the book, the full core, resident memory (engine.bench.core)
    risk                        the risk consumer (engine.bench.risk)
    funding                     index, mark, premium and settlement (engine.bench.funding)
    tokens                      leveraged tokens (engine.bench.tokens)
    replay                      verify, re-drive, snapshots (engine.bench.replay)
    gateway                     a request's bytes to its command (engine.bench.gateway)
    conditional                 the core with and without conditional orders
    market                      the market simulator's own CPU (engine.bench.market)
    api                         Binance's REST API against the native protocol (engine.bench.api)
    nats                        the log on NATS JetStream: durable throughput, ack latency,
                                failover (engine.bench.nats; needs nats-server)
"""
import sys

from engine.bench import (api, conditional, core, funding, gateway, market, nats, replay, risk,
                          suite, tokens)

SUITES = {"risk": risk.main, "funding": funding.main, "tokens": tokens.main,
          "replay": replay.main, "gateway": gateway.main, "conditional": conditional.main,
          "market": market.main, "api": api.main, "nats": nats.main}

args = sys.argv[1:]
if not args or args[0] == "all":
    sys.exit(suite.run_all(quick="--quick" in args))
if args[0] in SUITES:
    sys.exit(SUITES[args[0]](args[1:]) or 0)
sys.exit(core.main(args))
