"""Index prices, the composite index, mark prices and funding: a part of the core
(engine.core.engine). The arithmetic is in engine.core.composite, engine.core.markprice and
engine.core.funding; this part decides when it runs and which events it emits. As everywhere
in the core, appliers (`_on_*`) are the only code that mutates state.

Commands
    SetIndexPrices   index prices by symbol. Per symbol, in symbol order: IndexPriceUpdated
                     (with the premium index sampled from its book) then MarkPriceUpdated (the
                     computed mark). Then, if a member of the composite moved, the same pair for
                     ALLUSDT with the composite's value. The first SetIndexPrices that leaves at
                     least one member composes the index (CompositeRebalanced at BASE_VALUE).
    ListSymbol, ScheduleDelisting   listing times for composite membership.
    SetMarkPrice     rejected (-1130) for a symbol that has an index price: its mark is
                     computed; it still sets the mark of symbols without one.
    USD pairs (rules 2) in SetIndexPrices: "<ASSET>USD" for an asset a wallet can hold
                     (Multi-Assets collateral, COIN-M margin) or a COIN-M contract's pair:
                     AssetIndexUpdated (the asset's USD index, for Multi-Assets valuation),
                     then the index and mark of every COIN-M symbol of that pair, in the order
                     of the keys like any symbol. A COIN-M symbol's own name is no key (-1130:
                     its index is its pair's). The composite ignores pairs.

Time hook (`run_due`, called by Engine.handle before the command runs, at the first command
whose time is >= the due time; one integer compare otherwise): settlements at 00:00, 08:00 and
16:00 UTC and the composite's rebalance at 08:00 UTC, each missed due time in order (a
settlement before a rebalance at the same time), events stamped with the due time:
    FundingRateSet per perpetual symbol with an index price, then FundingPaid per open position
    (account order), then whatever `on_settled` adds (the leveraged tokens' funding into NAV,
    engine.core.tokens); CompositeRebalanced.
Funding is charged on the mark at the settlement (the last computed one). An isolated
position's funding moves its isolated margin with the wallet (the position's margin pays it).

Marks and premium samples are recomputed at each index price update of the symbol (not on
trades): the feed's index cadence is the mark cadence.
"""
from __future__ import annotations

from collections import deque
from typing import Callable

from engine.core import errors as E
from engine.core import funding as F
from engine.core import composite as X
from engine.core import markprice as M
from engine.core.accounts import ISOLATED, position_key
from engine.core.book import BUY, SELL
from engine.core.errors import Rejected
from engine.core.ledger import MARK, Applier, Ledger
from proto import commands as C
from proto import events as V

NEVER = 1 << 62


class FundingState:
    """One symbol's index, premium-index accumulators, basis window and funding history."""
    __slots__ = ("symbol", "perpetual", "rules", "index", "premium", "sample_time", "acc",
                 "acc_ms", "samples", "weighted", "next_sample", "impact_bid", "impact_ask",
                 "mid", "basis", "basis_sum", "last_rate", "history")

    def __init__(self, symbol: str, perpetual: bool, time: int, rules: int = 2) -> None:
        self.symbol = symbol
        self.perpetual = perpetual
        self.rules = rules
        self.index = 0
        self.premium = 0  # the premium index in force since sample_time
        self.sample_time = time
        self.acc = 0  # rules 1: sum of premium x ms over the current interval
        self.acc_ms = 0  # rules 1: ms covered in the current interval
        self.samples = 0  # rules 2: 5-second samples taken in the current interval
        self.weighted = 0  # rules 2: their sum of i x P_i
        self.next_sample = -(-time // F.SAMPLE_MS) * F.SAMPLE_MS  # rules 2: the next sample
        self.impact_bid = self.impact_ask = self.mid = 0
        self.basis: deque[int] = deque()  # the last BASIS_WINDOW (mid - index) samples
        self.basis_sum = 0
        self.last_rate = 0  # the last settled funding rate
        self.history: list[tuple[int, int, int]] = []  # (funding time, rate, mark)

    def basis_average(self) -> int:
        return M.basis_average(self.basis_sum, len(self.basis))

    def sample_until(self, end: int) -> None:
        """Rules 2: take the samples due at or before `end` with the premium in force."""
        k = F.samples_between(self.next_sample, end)
        if k:
            self.samples, self.weighted = F.add_samples(self.samples, self.weighted,
                                                        self.premium, k)
            self.next_sample += k * F.SAMPLE_MS

    def average_at(self, due: int) -> int:
        """The interval's average premium index if it settled at `due`."""
        if self.rules < 2:
            elapsed = max(due - self.sample_time, 0)
            return F.average_premium(self.acc + self.premium * elapsed, self.acc_ms + elapsed,
                                     self.premium)
        k = F.samples_between(self.next_sample, due)
        n, weighted = F.add_samples(self.samples, self.weighted, self.premium, k)
        return F.weighted_average_premium(n, weighted, self.premium)

    def canonical(self) -> list:
        state = [self.symbol, self.index, self.premium, self.sample_time, self.acc,
                 self.acc_ms, self.impact_bid, self.impact_ask, self.mid, list(self.basis),
                 self.last_rate, [list(h) for h in self.history]]
        if self.rules >= 2:
            state.append([self.samples, self.weighted, self.next_sample])
        return state


# called after a symbol's FundingPaid events: (symbol, funding time, rate, payments as
# (account, amount, position quantity))
SettlementHook = Callable[[str, int, int, list[tuple[int, int, int]]], None]


class Pricing:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.on_settled: SettlementHook | None = None
        self.states: dict[str, FundingState] = {}
        self.funding_next: int | None = None  # the next settlement (set by the first index)
        self.listings: dict[str, int] = {}  # symbol -> onboard time
        self.delistings: dict[str, int] = {}  # symbol -> delist time
        comp = X.COMPOSITE_SYMBOL
        self.composite = X.CompositeIndex(comp) if comp in ledger.symbols else None
        self.rebalance_next: int | None = None
        self.last_rebalance: int | None = None
        self.next_due = NEVER  # the earliest settlement or rebalance not yet run
        # COIN-M pairs: "BTCUSD" -> its symbols (their index is the pair's)
        self.pairs: dict[str, list[str]] = {}
        for name in sorted(ledger.symbols):
            pair = ledger.symbols[name].spec.pair
            if pair:
                self.pairs.setdefault(pair, []).append(name)

    def handlers(self) -> dict[type, Applier]:
        return {C.SetMarkPrice: self._set_mark_price, C.SetIndexPrices: self._set_index_prices,
                C.ListSymbol: self._list_symbol, C.ScheduleDelisting: self._schedule_delisting}

    def appliers(self) -> dict[type, Applier]:
        return {V.MarkPriceUpdated: self._on_mark_price, V.IndexPriceUpdated: self._on_index_price,
                V.CompositeRebalanced: self._on_composite_rebalanced,
                V.FundingRateSet: self._on_funding_rate, V.FundingPaid: self._on_funding_paid,
                V.SymbolListed: self._on_symbol_listed,
                V.DelistingScheduled: self._on_delisting_scheduled,
                V.AssetIndexUpdated: self._on_asset_index}

    def has_index(self, symbol: str) -> bool:
        return symbol in self.states

    def _refresh_due(self) -> None:
        self.next_due = min(self.funding_next if self.funding_next is not None else NEVER,
                            self.rebalance_next if self.rebalance_next is not None else NEVER)

    # == commands =================================================================================
    def _set_index_prices(self, cmd: C.SetIndexPrices) -> None:
        prices = cmd.prices
        comp = self.composite
        reject = self.ledger.reject_command
        if not prices:
            return reject(cmd, Rejected(E.INVALID_VALUE, "prices must not be empty",
                                        arg="prices"))
        ledger = self.ledger
        for name, price in prices.items():
            sym = ledger.symbols.get(name)
            if sym is None and not self._pair_asset(name):
                return reject(cmd, Rejected(E.INVALID_SYMBOL, f"unknown symbol {name!r}"))
            if sym is not None and sym.contract_size:
                return reject(cmd, Rejected(E.INVALID_VALUE, f"the index of {name} is its "
                                                             f"pair's, {sym.spec.pair}",
                                            arg="prices"))
            if comp is not None and name == comp.symbol:
                return reject(cmd, Rejected(E.INVALID_VALUE, f"the index of {name} is "
                                                             f"computed, not fed", arg="prices"))
            if price <= 0:
                return reject(cmd, Rejected(E.INVALID_VALUE, f"the index price of {name} must "
                                                             f"be positive", arg="prices"))
        for name in sorted(prices):
            if name in ledger.symbols:
                self._index_update(name, prices[name])
            else:
                self._pair_update(name, prices[name])
        if comp is None:
            return
        if comp.composed:
            weights = comp.weights
            if any(name in weights for name in prices):
                self._index_update(comp.symbol, comp.value())
        else:
            members = self._members_at(self.ledger.time)
            if members:
                self._emit_rebalance(self.ledger.time, members, X.BASE_VALUE)
                self._index_update(comp.symbol, comp.value())

    def _pair_asset(self, name: str) -> str:
        """The asset of a USD pair key ("BTCUSD" -> "BTC"; rules 2), or "" if it is none."""
        ledger = self.ledger
        if ledger.config.rules < 2 or not name.endswith("USD") or len(name) <= 3:
            return ""
        asset = name[:-3]
        if asset in ledger.asset_names or name in self.pairs:
            return asset
        return ""

    def _pair_update(self, pair: str, index: int) -> None:
        self.ledger.emit(V.AssetIndexUpdated(asset=self._pair_asset(pair), pair=pair,
                                             index_price=index))
        for name in self.pairs.get(pair, ()):
            self._index_update(name, index)

    def _index_update(self, name: str, index: int) -> None:
        """Sample the premium index from the book at this index, then compute the mark."""
        sym = self.ledger.symbols[name]
        book = sym.book
        notional = F.impact_notional(sym.table_at(self.ledger.time).max_leverage)
        size = sym.contract_size
        if size:
            ib = F.impact_price_coin(book, BUY, notional, size)
            ia = F.impact_price_coin(book, SELL, notional, size)
        else:
            ib = F.impact_price(book, BUY, notional)
            ia = F.impact_price(book, SELL, notional)
        bid, ask = book.bid, book.ask
        mid = (bid + ask) // 2 if bid is not None and ask is not None else 0
        self.ledger.emit(V.IndexPriceUpdated(symbol=name, index_price=index, impact_bid_price=ib,
                                             impact_ask_price=ia, mid_price=mid,
                                             premium_index=F.premium_index(ib, ia, index)))
        fs = self.states[name]
        if fs.perpetual and self.funding_next is not None:
            rate, to_funding = fs.last_rate, self.funding_next - self.ledger.time
        else:
            rate, to_funding = 0, 0
        mark = M.mark_price(index, rate, to_funding, fs.basis_average(), sym.last_price)
        self.ledger.emit(V.MarkPriceUpdated(symbol=name, mark_price=mark, index_price=index))

    def _set_mark_price(self, cmd: C.SetMarkPrice) -> None:
        ledger = self.ledger
        try:
            ledger.symbol(cmd.symbol)
            if cmd.mark_price <= 0 or cmd.index_price < 0:
                raise Rejected(E.INVALID_VALUE, "the mark price must be positive",
                               arg="markPrice")
            if self.has_index(cmd.symbol):
                raise Rejected(E.INVALID_VALUE, f"the mark price of {cmd.symbol} is computed "
                                                f"from its index price; send setIndexPrices",
                               arg="markPrice")
        except Rejected as r:
            return ledger.reject_command(cmd, r)
        ledger.emit(V.MarkPriceUpdated(symbol=cmd.symbol, mark_price=cmd.mark_price,
                                       index_price=cmd.index_price))

    def _list_symbol(self, cmd: C.ListSymbol) -> None:
        if cmd.symbol not in self.ledger.symbols:
            return self.ledger.reject_command(cmd, Rejected(E.INVALID_SYMBOL,
                                                            f"unknown symbol {cmd.symbol!r}"))
        self.ledger.emit(V.SymbolListed(symbol=cmd.symbol, onboard_time=cmd.onboard_time))

    def _schedule_delisting(self, cmd: C.ScheduleDelisting) -> None:
        if cmd.symbol not in self.ledger.symbols:
            return self.ledger.reject_command(cmd, Rejected(E.INVALID_SYMBOL,
                                                            f"unknown symbol {cmd.symbol!r}"))
        if cmd.delist_time <= 0:
            return self.ledger.reject_command(cmd, Rejected(E.INVALID_VALUE, "must be positive",
                                                            arg="delistTime"))
        self.ledger.emit(V.DelistingScheduled(symbol=cmd.symbol, delist_time=cmd.delist_time))

    # == the time hook ============================================================================
    def run_due(self, time: int) -> None:
        """Run every settlement and rebalance due at or before `time`, oldest first."""
        while self.next_due <= time:
            due = self.next_due
            if self.funding_next == due:
                self._settle_funding(due)
            if self.rebalance_next == due:
                self._rebalance(due)
            if self.next_due <= due:  # cannot happen: each step advances its own clock
                raise RuntimeError(f"due time {due} did not advance")

    def _settle_funding(self, due: int) -> None:
        names = sorted(s for s, fs in self.states.items() if fs.perpetual)
        positions: dict[str, list[tuple[int, int]]] = {s: [] for s in names}
        accounts = self.ledger.accounts
        hedged: set[int] = set()
        for aid in sorted(accounts):
            acct = accounts[aid]
            if acct.dual_side:
                hedged.add(aid)
            for pos in acct.positions.values():
                if pos.qty:
                    bucket = positions.get(pos.symbol)
                    if bucket is not None:
                        bucket.append((aid, pos.qty))
        emit = self.ledger.emit
        for s in names:
            fs = self.states[s]
            sym = self.ledger.symbols[s]
            positions[s].sort()
            avg = fs.average_at(due)
            cap = F.funding_cap(sym.spec, due)
            rate = F.settlement_rate(avg, cap)
            mark = sym.mark
            emit(V.FundingRateSet(symbol=s, funding_time=due, funding_rate=rate,
                                  average_premium_index=avg, interest_rate=F.INTEREST_RATE,
                                  funding_cap=cap, mark_price=mark, index_price=fs.index))
            payments = F.allocate(positions[s], mark, rate, sym.contract_size)
            for aid, amount, qty in payments:
                side = ("LONG" if qty > 0 else "SHORT") if aid in hedged else "BOTH"
                emit(V.FundingPaid(account=aid, symbol=s, amount=amount, position_amt=qty,
                                   funding_rate=rate, mark_price=mark, funding_time=due,
                                   position_side=side, asset=sym.asset))
            if self.on_settled is not None:  # leveraged tokens: funding into NAV
                self.on_settled(s, due, rate, payments)

    def _members_at(self, r: int) -> list[str]:
        listings, delistings, funding = self.listings, self.delistings, self.states
        out = []
        for name in sorted(self.ledger.symbols):
            if name in funding and X.is_eligible(self.ledger.symbols[name].spec) and \
                    X.is_member_at(r, listings.get(name, X.FOREVER), delistings.get(name)):
                out.append(name)
        return out

    def _rebalance(self, due: int) -> None:
        comp = self.composite
        members = self._members_at(due) or sorted(comp.weights)
        self._emit_rebalance(due, members, comp.value())

    def _emit_rebalance(self, time: int, members: list[str], value: int) -> None:
        comp = self.composite
        prices = {s: self.states[s].index for s in members}
        trial = X.CompositeIndex(comp.symbol)
        trial.rebalance(value, prices)  # for the display weights only
        self.ledger.emit(V.CompositeRebalanced(
            symbol=comp.symbol, time=time, index_price=value,
            constituents=[V.CompositeConstituent(symbol=s, price=prices[s],
                                                 weight_in_quantity=trial.weight_in_quantity(s))
                          for s in members],
            added=[s for s in members if s not in comp.weights],
            removed=sorted(s for s in comp.weights if s not in prices)))

    # == appliers =================================================================================
    def _on_mark_price(self, ev: V.MarkPriceUpdated) -> None:
        sym = self.ledger.symbols[ev.symbol]
        sym.mark = ev.mark_price
        sym.index = ev.index_price
        self.ledger.price_moved(ev.symbol, MARK, ev.mark_price)

    def _on_index_price(self, ev: V.IndexPriceUpdated) -> None:
        now = self.ledger.time
        fs = self.states.get(ev.symbol)
        if fs is None:
            perpetual = self.ledger.symbols[ev.symbol].spec.contract_type == "PERPETUAL"
            fs = self.states[ev.symbol] = FundingState(ev.symbol, perpetual, now,
                                                       self.ledger.config.rules)
            if perpetual and self.funding_next is None:
                self.funding_next = F.next_funding_after(now)
                self._refresh_due()
        else:
            elapsed = now - fs.sample_time
            if elapsed > 0:
                fs.acc += fs.premium * elapsed
                fs.acc_ms += elapsed
                fs.sample_time = now
            fs.sample_until(now - 1)  # samples before now take the old premium
        fs.premium = ev.premium_index
        fs.index = ev.index_price
        fs.impact_bid, fs.impact_ask = ev.impact_bid_price, ev.impact_ask_price
        fs.mid = ev.mid_price
        if ev.mid_price:
            basis = ev.mid_price - ev.index_price
            window = fs.basis
            window.append(basis)
            fs.basis_sum += basis
            if len(window) > M.BASIS_WINDOW:
                fs.basis_sum -= window.popleft()
        comp = self.composite
        if comp is not None:
            comp.move(ev.symbol, ev.index_price)

    def _on_composite_rebalanced(self, ev: V.CompositeRebalanced) -> None:
        self.composite.rebalance(ev.index_price, {c.symbol: c.price for c in ev.constituents})
        self.last_rebalance = ev.time
        self.rebalance_next = X.next_rebalance_after(ev.time)
        self._refresh_due()

    def _on_funding_rate(self, ev: V.FundingRateSet) -> None:
        fs = self.states[ev.symbol]
        fs.acc = fs.acc_ms = 0
        fs.sample_time = ev.funding_time
        fs.samples = fs.weighted = 0  # the sample at the funding time belonged to it
        fs.next_sample = ev.funding_time + F.SAMPLE_MS
        fs.last_rate = ev.funding_rate
        fs.history.append((ev.funding_time, ev.funding_rate, ev.mark_price))
        if len(fs.history) > F.HISTORY_LIMIT:
            del fs.history[0]
        self.funding_next = ev.funding_time + F.FUNDING_INTERVAL_MS
        self._refresh_due()

    def _on_asset_index(self, ev: V.AssetIndexUpdated) -> None:
        self.ledger.asset_index[ev.asset] = ev.index_price

    def _on_funding_paid(self, ev: V.FundingPaid) -> None:
        acct = self.ledger.accounts[ev.account]
        acct.credit(ev.asset, ev.amount)
        pos = acct.positions[position_key(ev.symbol, ev.position_side)]
        if pos.margin_type == ISOLATED:
            acct.set_isolated(pos, pos.isolated_margin + ev.amount)

    def _on_symbol_listed(self, ev: V.SymbolListed) -> None:
        self.listings[ev.symbol] = ev.onboard_time

    def _on_delisting_scheduled(self, ev: V.DelistingScheduled) -> None:
        self.delistings[ev.symbol] = ev.delist_time

    # == state ====================================================================================
    def canonical(self) -> list | None:
        """The state of this mixin for hashes and snapshots; None while it is untouched, so
        the state hash of a log that never uses index prices is what it was without it."""
        if not (self.states or self.listings or self.delistings):
            return None
        comp = self.composite
        composite = None
        if comp is not None and comp.composed:
            composite = [comp.base_value, sorted(comp.base_prices.items()),
                         sorted(comp.prices.items())]
        return [self.funding_next, self.rebalance_next, self.last_rebalance,
                sorted(self.listings.items()), sorted(self.delistings.items()), composite,
                [self.states[s].canonical() for s in sorted(self.states)]]

    def restore(self, data: list) -> None:
        (funding_next, rebalance_next, last_rebalance, listings, delistings, composite,
         states) = data
        self.funding_next, self.rebalance_next = funding_next, rebalance_next
        self.last_rebalance = last_rebalance
        self.listings = dict(listings)
        self.delistings = dict(delistings)
        if composite is not None:
            base_value, base_prices, prices = composite
            comp = self.composite
            comp.rebalance(base_value, dict(base_prices))
            comp.prices = dict(prices)
            comp.total = comp.recompute_total()
        for row in states:
            (symbol, index, premium, sample_time, acc, acc_ms, ib, ia, mid, basis, last_rate,
             history) = row[:12]
            perpetual = self.ledger.symbols[symbol].spec.contract_type == "PERPETUAL"
            fs = self.states[symbol] = FundingState(symbol, perpetual, sample_time,
                                                    self.ledger.config.rules)
            if len(row) > 12:
                fs.samples, fs.weighted, fs.next_sample = row[12]
            fs.index, fs.premium, fs.acc, fs.acc_ms = index, premium, acc, acc_ms
            fs.impact_bid, fs.impact_ask, fs.mid = ib, ia, mid
            fs.basis = deque(basis)
            fs.basis_sum = sum(basis)
            fs.last_rate = last_rate
            fs.history = [tuple(h) for h in history]
        self._refresh_due()
