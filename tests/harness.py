"""A test harness: an engine driven with decimal strings, as a user would write them."""
from __future__ import annotations

from engine.core import catalogue as catalogue_mod
from engine.core import Engine, EngineConfig
from engine.core.fixed import SCALE, parse
from proto import commands as C
from proto import events as V

_CATALOGUE = catalogue_mod.load()


def d(text: str) -> int:
    return parse(text)


class Harness:
    def __init__(self, catalogue=None, config: EngineConfig | None = None, time: int = 0) -> None:
        self.engine = Engine(catalogue or _CATALOGUE, config or EngineConfig(checkpoint_every=0))
        self.seq = 0
        self.time = time
        self.records: list[tuple[int, int, C.Command, list[V.Event]]] = []

    def send(self, cmd: C.Command, time: int | None = None) -> list[V.Event]:
        self.seq += 1
        if time is not None:
            self.time = time
        events = self.engine.handle(cmd, self.seq, self.time)
        self.records.append((self.seq, self.time, cmd, events))
        return events

    def account(self, account: int, deposit: str = "100000", registered_at: int | None = None):
        if registered_at is None:  # an established account unless a test says otherwise
            registered_at = self.time - 400 * 86_400_000
        self.send(C.CreateAccount(account=account, registered_at=registered_at))
        return self.send(C.Deposit(account=account, amount=d(deposit)))

    def order(self, account: int, symbol: str, side: str, qty: str, price: str | None = None,
              tif: str | None = None, **kw) -> list[V.Event]:
        type_ = "LIMIT" if price is not None else "MARKET"
        if type_ == "LIMIT" and tif is None:
            tif = "GTC"
        return self.send(C.NewOrder(account=account, symbol=symbol, side=side, type=type_,
                                    quantity=d(qty), price=d(price) if price else 0,
                                    time_in_force=tif, **kw))

    def cancel(self, account: int, symbol: str, order_id: int = 0, client_id: str = ""):
        return self.send(C.CancelOrder(account=account, symbol=symbol, order_id=order_id,
                                       orig_client_order_id=client_id))

    def modify(self, account: int, symbol: str, order_id: int, qty: str, price: str):
        return self.send(C.ModifyOrder(account=account, symbol=symbol, order_id=order_id,
                                       quantity=d(qty), price=d(price)))

    def leverage(self, account: int, symbol: str, leverage: int):
        return self.send(C.SetLeverage(account=account, symbol=symbol, leverage=leverage))

    def mark(self, symbol: str, price: str):
        return self.send(C.SetMarkPrice(symbol=symbol, mark_price=d(price)))

    # -- reading state -------------------------------------------------------------------------
    def book(self, symbol: str, side: str) -> list[tuple[int, int, int]]:
        """[(order_id, price, remaining)] in priority order."""
        book = self.engine.symbols[symbol].book
        return [(o.order_id, o.price, o.remaining) for lv in book.levels(side) for o in lv.orders()]

    def position(self, account: int, symbol: str):
        return self.engine.accounts[account].positions.get(symbol)

    def wallet(self, account: int) -> int:
        return self.engine.accounts[account].wallet


def check_derived(engine: Engine) -> None:
    """The figures the appliers keep running (each side's order margin, an account's order
    margin, what it holds per asset, its cross positions with a quantity) equal a fresh
    computation from the positions."""
    for a in engine.accounts.values():
        held: dict[str, int] = {}
        for p in a.positions.values():
            for o in (p.buys, p.sells):
                assert 0 <= o.cost_lo < SCALE and 0 <= o.loss_lo < SCALE, "parts not normal"
            assert (p.buy_margin, p.sell_margin) == \
                (p.side_margin(True, p.buys), p.side_margin(False, p.sells)), \
                f"stale side margin of {a.account_id} {p.symbol} {p.side}"
            assert p.order_margin == p.buy_margin + p.sell_margin == p.compute_order_margin()
            held[p.asset] = held.get(p.asset, 0) + p.order_margin + \
                (p.isolated_margin if p.margin_type == "ISOLATED" else 0)
        assert a.order_margin == sum(p.order_margin for p in a.positions.values())
        assert {k: a.holding(k) for k in held} == held and \
            not any(v for k, v in a.held.items() if k not in held), \
            f"held margin of account {a.account_id}: {a.held_usdt} {a.held} != {held}"
        assert sorted(map(id, a.open_cross)) == sorted(
            id(p) for p in a.positions.values() if p.qty and p.margin_type != "ISOLATED"), \
            f"open cross positions of account {a.account_id}"


def kinds(events) -> list[str]:
    return [type(e).__name__ for e in events]


def rejection(events) -> int | None:
    """The Binance code of a rejection among `events`, or None."""
    for e in events:
        if isinstance(e, (V.OrderRejected, V.CommandRejected)):
            return e.code
    return None


def trades(events) -> list[V.Trade]:
    return [e for e in events if isinstance(e, V.Trade)]


class PipelineHarness(Harness):
    """A harness whose commands go through the pipeline, so the risk consumer acts on them
    (its marginCall and liquidate commands are sequenced right after, as in the server)."""

    def __init__(self, catalogue=None, config: EngineConfig | None = None, time: int = 0):
        super().__init__(catalogue, config or EngineConfig(checkpoint_every=0), time)
        from engine.sequencer import Pipeline  # the layer above the core, for these tests only
        self.pipeline = Pipeline(self.engine)
        self.pipeline.sequencer.seq = 0

    def send(self, cmd: C.Command, time: int | None = None) -> list[V.Event]:
        if time is not None:
            self.time = time
        records = self.pipeline.submit(cmd, self.time)
        self.seq = records[-1].seq
        self.records.extend((r.seq, r.time, r.command, r.events) for r in records)
        return [e for r in records for e in r.events]

    def commands(self, since: int = 0) -> list[C.Command]:
        """The commands sequenced after record number `since` (the consumer's among them)."""
        return [cmd for _, _, cmd, _ in self.records[since:]]
