"""The spot wallet and the leveraged tokens' spot books (TOKEN/USDT): a part of the core
(engine.core.engine), which the token part (engine.core.tokens) opens a market in for each
launched token. As everywhere in the core, appliers (`_on_*`) are the only code that mutates
state.

Spot wallet: per account, USDT and token balances, separate from the futures wallet (a futures
account's `wallet`). Balances locked by resting orders are derived from the orders (buy: its
remaining quantity x price in USDT, exact because tick and step decimals add up to at most 8;
sell: its remaining tokens). Nothing here touches futures positions or futures margin.

Commands
    FuturesTransfer  USDT between the wallets: type 1 spot -> futures, type 2 futures -> spot
                     (at most what a withdrawal could take: min(available balance, wallet)).
    NewSpotOrder     LIMIT (GTC, IOC, FOK, GTX) or MARKET on "<TOKEN>USDT". Filters (Binance
                     spot codes, -1013 "Filter failure: ..."): tick, step, min/max quantity,
                     min notional, and the seed's limit-order price range: a limit price must be
                     within +/-90% of the token's latest published NAV (NAV 10 -> 1 to 19, both
                     bounds accepted). A MARKET order trades only inside that range too. Balance
                     (-2010): a buy needs quantity x price USDT free (a market buy: the cost of
                     walking the book within the range), a sell the tokens free.
    CancelSpotOrder  by order id (-2011 unknown).
Matching is price-time priority on engine.core.book.OrderBook, with the taker's self-trade
prevention mode (the engine's default when none is given), as on the futures books.

Fees (assumed rates in tokens.json): the buyer pays its fee in the token it receives
(quantity x rate, rounded up to 1e-8 token), the seller in USDT (notional x rate, rounded up):
the venue's USDT fees go to `fees_collected`, its token fees to the market's `fee_tokens`.
So for every token: issued - redeemed = outstanding = sum of all spot balances + fee_tokens.
"""
from __future__ import annotations

from engine.core import errors as E
from engine.core import token_specs as T
from engine.core.book import BUY, SELL, Order, OrderBook, crosses, fillable
from engine.core.errors import Rejected
from engine.core.fixed import SCALE, fmt
from engine.core.ledger import Applier, Ledger
from proto import commands as C
from proto import events as V

FILTER_FAILURE = -1013  # Binance spot: "Filter failure: <FILTER>"
SPOT_INSUFFICIENT = -2010  # Binance spot: "Account has insufficient balance for requested action."


class SpotWallet:
    __slots__ = ("usdt", "usdt_locked", "tokens", "tokens_locked", "open_orders")

    def __init__(self) -> None:
        self.usdt = 0
        self.usdt_locked = 0  # derived: resting buy orders
        self.tokens: dict[str, int] = {}
        self.tokens_locked: dict[str, int] = {}  # derived: resting sell orders
        self.open_orders: dict[str, int] = {}  # derived: resting orders per spot symbol

    def free_usdt(self) -> int:
        return self.usdt - self.usdt_locked

    def free_token(self, token: str) -> int:
        return self.tokens.get(token, 0) - self.tokens_locked.get(token, 0)


_EMPTY = SpotWallet()


class SpotMarket:
    """One token's spot book, the token's latest published NAV (the price range is around
    it; the token part keeps it current) and the buyers' fees taken in the token."""
    __slots__ = ("symbol", "token", "spec", "book", "last_price", "nav", "fee_tokens")

    def __init__(self, spec: T.TokenSpec, nav: int) -> None:
        self.symbol = spec.spot_symbol
        self.token = spec.token
        self.spec = spec
        self.book = OrderBook(spec.spot_symbol)
        self.last_price = 0
        self.nav = nav
        self.fee_tokens = 0


class SpotDesk:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.wallets: dict[int, SpotWallet] = {}
        self.markets: dict[str, SpotMarket] = {}  # spot symbol -> market (launched tokens)
        self.pending: dict[int, Order] = {}  # accepted spot orders still matching
        self.issuers: dict[int, str] = {}  # a token issuer's account -> its token

    def handlers(self) -> dict[type, Applier]:
        return {C.FuturesTransfer: self._futures_transfer, C.NewSpotOrder: self._new_spot_order,
                C.CancelSpotOrder: self._cancel_spot_order}

    def appliers(self) -> dict[type, Applier]:
        return {V.FuturesTransferred: self._on_futures_transferred,
                V.SpotOrderAccepted: self._on_spot_order_accepted,
                V.SpotOrderRested: self._on_spot_order_rested, V.SpotTrade: self._on_spot_trade,
                V.SpotOrderCanceled: self._on_spot_order_canceled,
                V.SpotOrderExpired: self._on_spot_order_expired}

    def open_market(self, spec: T.TokenSpec, nav: int) -> SpotMarket:
        """A token was launched: its spot book opens, and its issuer is no client."""
        market = self.markets[spec.spot_symbol] = SpotMarket(spec, nav)
        self.issuers[spec.issuer] = spec.token
        return market

    def wallet(self, account: int) -> SpotWallet:
        return self.wallets.get(account, _EMPTY)

    def wallet_for_update(self, account: int) -> SpotWallet:
        w = self.wallets.get(account)
        if w is None:
            w = self.wallets[account] = SpotWallet()
        return w

    def check_not_issuer(self, account: int) -> None:
        token = self.issuers.get(account)
        if token is not None:
            raise Rejected(E.INVALID_VALUE, msg=f"Account {account} is the issuer of "
                           f"{token}: not for client commands.")

    # == commands =================================================================================
    def _futures_transfer(self, cmd: C.FuturesTransfer) -> None:
        try:
            acct = self.ledger.account(cmd.account)
            self.check_not_issuer(cmd.account)
            if cmd.amount <= 0:
                raise Rejected(E.INVALID_VALUE, msg="Transfer amount must be positive.")
            w = self.wallet(cmd.account)
            if cmd.type == 2:
                free = min(self.ledger.available_balance(acct), acct.wallet)
                if cmd.amount > free:
                    raise Rejected(E.BALANCE_INSUFFICIENT, msg=f"Insufficient futures balance: "
                                   f"{fmt(max(free, 0))} USDT available.")
                wallet, spot = acct.wallet - cmd.amount, w.usdt + cmd.amount
            else:
                if cmd.amount > w.free_usdt():
                    raise Rejected(E.BALANCE_INSUFFICIENT, msg=f"Insufficient spot balance: "
                                   f"{fmt(w.free_usdt())} USDT free.")
                wallet, spot = acct.wallet + cmd.amount, w.usdt - cmd.amount
        except Rejected as r:
            return self.ledger.reject_command(cmd, r)
        self.ledger.emit(V.FuturesTransferred(account=cmd.account, amount=cmd.amount, type=cmd.type,
                                              balance=wallet, spot_balance=spot))

    def _new_spot_order(self, cmd: C.NewSpotOrder) -> None:
        try:
            accepted = self._validate_spot(cmd)
        except Rejected as r:
            self.ledger.emit(V.OrderRejected(account=cmd.account, symbol=cmd.symbol, code=r.code,
                                             msg=r.msg, client_order_id=cmd.new_client_order_id,
                                             detail=r.detail))
            return
        self.ledger.emit(accepted)
        if not accepted.rest:
            self._spot_match(self.pending[accepted.order_id])

    def _validate_spot(self, cmd: C.NewSpotOrder) -> V.SpotOrderAccepted:
        market = self.markets.get(cmd.symbol)
        if market is None:
            raise Rejected(E.INVALID_SYMBOL, msg=f"Invalid symbol {cmd.symbol!r} (token spot books "
                           f"exist once the token is launched).")
        self.ledger.account(cmd.account)
        self.check_not_issuer(cmd.account)
        spec = market.spec
        side, qty, price = cmd.side, cmd.quantity, cmd.price
        w = self.wallet(cmd.account)
        if cmd.type == "LIMIT":
            tif = cmd.time_in_force or "GTC"
            if price <= 0:
                raise Rejected(E.PRICE_LESS_THAN_ZERO, msg="Price less than or equal to zero.")
            if price % spec.tick_size:
                raise Rejected(FILTER_FAILURE, msg=f"Filter failure: PRICE_FILTER (tick size "
                               f"{fmt(spec.tick_size)}).")
            if not T.within_band(price, market.nav, spec.price_band):
                lo, hi = T.band_bounds(market.nav, spec.price_band)
                raise Rejected(FILTER_FAILURE,
                               msg=f"Filter failure: PERCENT_PRICE: leveraged-token "
                               f"limit order price range rule: the price must be "
                               f"within ±{fmt(spec.price_band * 100)}% of the "
                               f"latest NAV {fmt(market.nav)}, i.e. {fmt(lo)} to "
                               f"{fmt(hi)}.")
        else:
            if price:
                raise Rejected(E.PARAM_NOT_REQUIRED,
                               msg="Parameter 'price' sent when not required.")
            if cmd.time_in_force is not None:
                raise Rejected(E.PARAM_NOT_REQUIRED,
                               msg="Parameter 'timeInForce' sent when not required.")
            tif = "IOC"
        if qty <= 0:
            raise Rejected(E.QTY_LESS_THAN_ZERO, msg="Quantity less than or equal to zero.")
        if qty < spec.min_qty or qty > spec.max_qty or (qty - spec.min_qty) % spec.step_size:
            raise Rejected(FILTER_FAILURE,
                           msg=f"Filter failure: LOT_SIZE (min {fmt(spec.min_qty)}, "
                           f"max {fmt(spec.max_qty)}, step "
                           f"{fmt(spec.step_size)}).")
        book = market.book
        limit = price if cmd.type == "LIMIT" else self._spot_market_limit(market, side)
        if cmd.type == "LIMIT":
            if qty * price // SCALE < spec.min_notional:
                raise Rejected(FILTER_FAILURE, msg=f"Filter failure: NOTIONAL (at least "
                               f"{fmt(spec.min_notional)} USDT).")
        if w.open_orders.get(cmd.symbol, 0) >= spec.max_num_orders:
            raise Rejected(E.MAX_OPEN_ORDERS,
                           msg=f"Reach max open order limit ({spec.max_num_orders}).")
        if side == BUY:
            need = qty * price // SCALE if cmd.type == "LIMIT" else \
                self._spot_walk_cost(book, limit, qty)
            if need > w.free_usdt():
                raise Rejected(SPOT_INSUFFICIENT, msg=f"Account has insufficient balance for "
                               f"requested action: {fmt(need)} USDT needed, "
                               f"{fmt(w.free_usdt())} free.")
        elif qty > w.free_token(market.token):
            raise Rejected(SPOT_INSUFFICIENT, msg=f"Account has insufficient balance for requested "
                           f"action: {fmt(w.free_token(market.token))} "
                           f"{market.token} free.")
        if tif == "GTX" and crosses(book, side, limit):
            raise Rejected(E.GTX_WOULD_TAKE, msg="Due to the order could not be executed as maker, "
                           "the Post Only order will be rejected.")
        if tif == "FOK" and fillable(book, side, limit, qty) < qty:
            raise Rejected(E.FOK_UNFILLABLE,
                           msg="Due to the order could not be filled immediately, "
                           "the FOK order has been rejected.")
        stp = cmd.self_trade_prevention_mode or self.ledger.config.default_stp
        rest = tif in ("GTC", "GTX") and not crosses(book, side, limit)
        return V.SpotOrderAccepted(order_id=self.ledger.next_order_id, account=cmd.account,
                                   symbol=cmd.symbol, side=side, type=cmd.type,
                                   time_in_force=tif, price=price, quantity=qty,
                                   client_order_id=cmd.new_client_order_id, stp_mode=stp,
                                   rest=rest)

    def _spot_market_limit(self, market: SpotMarket, side: str) -> int:
        """A market order's worst price: the edge of the price range, on the tick."""
        spec = market.spec
        lo, hi = T.band_bounds(market.nav, spec.price_band)
        tick = spec.tick_size
        return hi // tick * tick if side == BUY else max(-(-lo // tick) * tick, tick)

    @staticmethod
    def _spot_walk_cost(book: OrderBook, limit: int, qty: int) -> int:
        """USDT to buy `qty` from the asks up to `limit` (less if they hold less)."""
        cost = 0
        for level in book.levels(SELL):
            if level.price > limit or qty <= 0:
                break
            q = min(qty, level.total)
            cost += q * level.price // SCALE
            qty -= q
        return cost

    def _cancel_spot_order(self, cmd: C.CancelSpotOrder) -> None:
        market = self.markets.get(cmd.symbol)
        if market is None:
            return self.ledger.reject_command(cmd, Rejected(E.INVALID_SYMBOL,
                                                            msg=f"Invalid symbol {cmd.symbol!r}."))
        order = market.book.orders.get(cmd.order_id)
        if order is None or order.account != cmd.account:
            return self.ledger.reject_command(cmd, Rejected(E.UNKNOWN_ORDER,
                                                            msg="Unknown order sent."))
        self.ledger.emit(V.SpotOrderCanceled(order_id=order.order_id, account=order.account,
                                             symbol=order.symbol, quantity=order.remaining))

    # == matching =================================================================================
    def _spot_match(self, taker: Order) -> None:
        market = self.markets[taker.symbol]
        expired_in_match = self._spot_take(market, taker)
        if not taker.remaining:
            return
        if expired_in_match:
            status, reason = "EXPIRED_IN_MATCH", "selfTrade"
        elif taker.tif in ("GTC", "GTX"):
            self.ledger.emit(V.SpotOrderRested(order_id=taker.order_id, quantity=taker.remaining))
            return
        else:
            status, reason = "EXPIRED", taker.tif if taker.type == "LIMIT" else "MARKET"
        self.ledger.emit(V.SpotOrderExpired(order_id=taker.order_id, account=taker.account,
                                            symbol=taker.symbol, quantity=taker.remaining,
                                            status=status, reason=reason))

    def _spot_take(self, market: SpotMarket, taker: Order) -> bool:
        """Match a spot taker against the book; True if self-trade prevention expired it."""
        book, spec = market.book, market.spec
        is_buy = taker.side == BUY
        maker_side = SELL if is_buy else BUY
        limit = taker.price if taker.type == "LIMIT" else \
            self._spot_market_limit(market, taker.side)
        stp = taker.stp if taker.tif not in ("FOK", "GTX") else "NONE"
        market_buy = is_buy and taker.type == "MARKET"
        step = spec.step_size
        emit = self.ledger.emit
        while taker.remaining > 0:
            level = book.best_level(maker_side)
            if level is None or (level.price > limit if is_buy else level.price < limit):
                break
            maker = level.head
            if maker.account == taker.account and stp != "NONE":
                if stp in ("EXPIRE_MAKER", "EXPIRE_BOTH"):
                    emit(V.SpotOrderExpired(order_id=maker.order_id, account=maker.account,
                                            symbol=maker.symbol, quantity=maker.remaining,
                                            status="EXPIRED_IN_MATCH", reason="selfTrade"))
                if stp in ("EXPIRE_TAKER", "EXPIRE_BOTH"):
                    return True
                continue
            price = level.price
            qty = min(taker.remaining, maker.remaining)
            if market_buy:  # never beyond the buyer's free USDT (its check was an estimate)
                afford = self.wallet(taker.account).free_usdt() * SCALE // price
                qty = min(qty, afford - afford % step)
                if qty <= 0:
                    break
            notional = qty * price // SCALE
            buyer_rate = spec.taker_fee if is_buy else spec.maker_fee
            seller_rate = spec.maker_fee if is_buy else spec.taker_fee
            emit(V.SpotTrade(trade_id=self.ledger.next_trade_id, symbol=taker.symbol, price=price,
                             quantity=qty, taker_side=taker.side, maker_order_id=maker.order_id,
                             taker_order_id=taker.order_id, maker_account=maker.account,
                             taker_account=taker.account,
                             buyer_fee=-(-(qty * buyer_rate) // SCALE),
                             seller_fee=-(-(notional * seller_rate) // SCALE)))
        return False

    # == appliers =================================================================================
    def _spot_rest(self, order: Order) -> None:
        market = self.markets[order.symbol]
        market.book.add(order)
        w = self.wallet_for_update(order.account)
        if order.side == BUY:
            w.usdt_locked += order.remaining * order.price // SCALE
        else:
            w.tokens_locked[market.token] = w.tokens_locked.get(market.token, 0) + order.remaining
        w.open_orders[order.symbol] = w.open_orders.get(order.symbol, 0) + 1

    def _spot_unrest(self, order: Order, qty: int) -> None:
        market = self.markets[order.symbol]
        w = self.wallets[order.account]
        if order.side == BUY:
            w.usdt_locked -= qty * order.price // SCALE
        else:
            w.tokens_locked[market.token] -= qty
        if qty == order.remaining:
            market.book.remove(order)
            order.remaining = 0
            w.open_orders[order.symbol] -= 1
        else:
            market.book.reduce(order, qty)

    def _on_futures_transferred(self, ev: V.FuturesTransferred) -> None:
        self.ledger.accounts[ev.account].wallet = ev.balance
        self.wallet_for_update(ev.account).usdt = ev.spot_balance

    def _on_spot_order_accepted(self, ev: V.SpotOrderAccepted) -> None:
        order = Order(ev.order_id, ev.account, ev.symbol, ev.side, ev.price, ev.quantity,
                      ev.time_in_force, ev.type, False, ev.client_order_id, ev.stp_mode)
        self.ledger.next_order_id = ev.order_id + 1
        if ev.rest:
            self._spot_rest(order)
        else:
            self.pending[ev.order_id] = order

    def _on_spot_order_rested(self, ev: V.SpotOrderRested) -> None:
        self._spot_rest(self.pending.pop(ev.order_id))

    def _on_spot_trade(self, ev: V.SpotTrade) -> None:
        market = self.markets[ev.symbol]
        token = market.token
        maker = market.book.orders[ev.maker_order_id]
        taker = self.pending[ev.taker_order_id]
        qty = ev.quantity
        self._spot_unrest(maker, qty)  # releases the maker's lock for qty
        if ev.taker_side == BUY:
            buyer, seller = self.wallet_for_update(taker.account), self.wallets[maker.account]
        else:
            buyer, seller = self.wallets[maker.account], self.wallet_for_update(taker.account)
        notional = qty * ev.price // SCALE
        buyer.usdt -= notional
        buyer.tokens[token] = buyer.tokens.get(token, 0) + qty - ev.buyer_fee
        seller.tokens[token] -= qty
        seller.usdt += notional - ev.seller_fee
        market.fee_tokens += ev.buyer_fee
        self.ledger.fees_collected += ev.seller_fee
        taker.remaining -= qty
        if taker.remaining == 0:
            del self.pending[taker.order_id]
        market.last_price = ev.price
        self.ledger.next_trade_id = ev.trade_id + 1

    def _on_spot_order_canceled(self, ev: V.SpotOrderCanceled) -> None:
        order = self.markets[ev.symbol].book.orders[ev.order_id]
        self._spot_unrest(order, order.remaining)

    def _on_spot_order_expired(self, ev: V.SpotOrderExpired) -> None:
        if self.pending.pop(ev.order_id, None) is not None:
            return
        order = self.markets[ev.symbol].book.orders[ev.order_id]
        self._spot_unrest(order, order.remaining)

    # == state ====================================================================================
    def canonical(self) -> list:
        wallets = [[aid, w.usdt, sorted((t, q) for t, q in w.tokens.items() if q)]
                   for aid, w in sorted(self.wallets.items())]
        books = []
        for name in sorted(self.markets):
            m = self.markets[name]
            sides = [[[o.order_id, o.account, o.price, o.quantity, o.remaining, o.tif,
                       o.client_id, o.stp] for level in m.book.levels(side)
                      for o in level.orders()] for side in (BUY, SELL)]
            books.append([name, m.last_price, sides])
        return [wallets, books]

    def restore(self, data: list) -> None:
        wallets, books = data
        for aid, usdt, tokens in wallets:
            w = self.wallet_for_update(aid)
            w.usdt = usdt
            w.tokens = dict(tokens)
        for name, last_price, sides in books:
            market = self.markets[name]
            market.last_price = last_price
            for side, orders in zip((BUY, SELL), sides):
                for oid, account, price, quantity, remaining, tif, client_id, stp in orders:
                    order = Order(oid, account, name, side, price, quantity, tif, "LIMIT", False,
                                  client_id, stp)
                    order.remaining = remaining
                    self._spot_rest(order)
