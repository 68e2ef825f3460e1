"""Conditional orders (Binance's Algo service): every type, both trigger sources, the trailing
path, closePosition, priceProtect, release when the position closes, the firing order, and a
re-drive of a log holding them, byte for byte."""
import pytest

from engine.core import EngineConfig
from engine.core.snapshot import restore, take
from proto import commands as C
from proto import events as V
from tests.harness import Harness, d, kinds, rejection, trades

BTC = "BTCUSDT"


def of(events, t):
    return [e for e in events if isinstance(e, t)]


def algo(h, account, side, type_, **kw):
    for k in ("quantity", "price", "trigger_price", "activate_price", "callback_rate"):
        if isinstance(kw.get(k), str):
            kw[k] = d(kw[k])
    return h.send(C.NewAlgoOrder(account=account, symbol=BTC, side=side, type=type_, **kw))


@pytest.fixture
def h():
    """Account 1 trades; 2 and 3 make a book around 30,000 (bids 29,990 / asks 30,010 and
    more depth below and above); the mark is 30,000."""
    h = Harness()
    for a in (1, 2, 3):
        h.account(a, "1000000")
    h.mark(BTC, "30000")
    for i in range(1, 6):
        h.order(2, BTC, "BUY", "1", str(30000 - 10 * i))
        h.order(3, BTC, "SELL", "1", str(30000 + 10 * i))
    return h


def last_trade(h, price):
    """Account 2 and 3 trade once at `price` (sets the last price), then the book is reset."""
    h.order(3, BTC, "SELL", "0.001", price)
    h.order(2, BTC, "BUY", "0.001", price, tif="IOC")


# -- placing -------------------------------------------------------------------------------------
def test_a_conditional_type_sent_as_an_ordinary_order_gets_4120(h):
    ev = h.send(C.NewOrder(account=1, symbol=BTC, side="BUY", type="STOP_MARKET",
                           quantity=d("1")))
    assert rejection(ev) == -4120 and ev[0].msg == ("Order type not supported for this endpoint. "
                                                   "Please use the Algo Order API endpoints "
                                                   "instead.")


def test_a_trigger_that_would_fire_at_once_gets_2021(h):
    # the last price is 0 (no trade yet) for CONTRACT_PRICE: nothing fires at once; on the mark:
    ev = algo(h, 1, "BUY", "STOP_MARKET", quantity="0.1", trigger_price="29000",
              working_type="MARK_PRICE")
    assert rejection(ev) == -2021 and ev[0].msg == "Order would immediately trigger."
    ev = algo(h, 1, "SELL", "TAKE_PROFIT_MARKET", quantity="0.1", trigger_price="29000",
              working_type="MARK_PRICE")
    assert rejection(ev) == -2021
    assert kinds(algo(h, 1, "BUY", "STOP_MARKET", quantity="0.1", trigger_price="31000",
                      working_type="MARK_PRICE")) == ["AlgoOrderAccepted"]


def test_placing_reserves_no_margin_and_checks_its_own_fields(h):
    before = h.engine.ledger.available_balance(h.engine.accounts[1])
    ev = algo(h, 1, "BUY", "STOP", quantity="1", price="31010", trigger_price="31000",
              client_algo_id="sl1")
    assert kinds(ev) == ["AlgoOrderAccepted"] and ev[0].algo_id == 1
    assert h.engine.ledger.available_balance(h.engine.accounts[1]) == before
    assert rejection(algo(h, 1, "BUY", "STOP", quantity="1", price="31010",
                          trigger_price="31000", client_algo_id="sl1")) == -4116
    assert rejection(algo(h, 1, "BUY", "STOP", quantity="1", trigger_price="31000")) == -1102
    assert rejection(algo(h, 1, "BUY", "STOP_MARKET", quantity="1")) == -1102
    assert rejection(algo(h, 1, "BUY", "STOP_MARKET", quantity="1",
                          trigger_price="31000.05")) == -4014
    assert rejection(algo(h, 1, "BUY", "TRAILING_STOP_MARKET", quantity="1",
                          callback_rate="0.05")) == -1130
    assert rejection(algo(h, 1, "BUY", "STOP_MARKET", quantity="1", trigger_price="31000",
                          price_match="OPPONENT")) == -5038


def test_the_per_symbol_limit_of_open_conditional_orders(h):
    limit = h.engine.symbols[BTC].spec.max_num_algo_orders
    for i in range(limit):
        assert kinds(algo(h, 1, "BUY", "STOP_MARKET", quantity="0.01",
                          trigger_price=str(31000 + i))) == ["AlgoOrderAccepted"]
    ev = algo(h, 1, "BUY", "STOP_MARKET", quantity="0.01", trigger_price="32000")
    assert rejection(ev) == -4045 and ev[0].msg == "Reach max stop order limit."


# -- triggering ----------------------------------------------------------------------------------
def test_buy_stop_market_fires_on_the_last_price_and_trades(h):
    ev = algo(h, 1, "BUY", "STOP_MARKET", quantity="0.5", trigger_price="30005")
    aid = ev[0].algo_id
    last_trade(h, "30004")  # below the trigger: waits
    assert aid in h.engine.conditional.algos
    h.order(3, BTC, "SELL", "0.001", "30005")
    ev = h.order(2, BTC, "BUY", "0.001", "30005", tif="IOC")  # the last price reaches 30,005
    fired = of(ev, V.AlgoOrderTriggered)
    assert [(f.algo_id, f.price) for f in fired] == [(aid, d("30005"))]
    accepted = [e for e in ev if isinstance(e, V.OrderAccepted) and e.account == 1]
    assert accepted[0].order_id == fired[0].order_id and accepted[0].type == "MARKET"
    assert sum(t.quantity for t in trades(ev) if t.taker_account == 1) == d("0.5")
    assert aid not in h.engine.conditional.algos


def test_sell_stop_on_the_mark_becomes_a_limit_order(h):
    ev = algo(h, 1, "SELL", "STOP", quantity="1", price="29985", trigger_price="29995",
              working_type="MARK_PRICE")
    assert kinds(ev) == ["AlgoOrderAccepted"]
    ev = h.mark(BTC, "29996")
    assert not of(ev, V.AlgoOrderTriggered)
    ev = h.mark(BTC, "29995")
    fired = of(ev, V.AlgoOrderTriggered)
    assert len(fired) == 1
    placed = [e for e in ev if isinstance(e, V.OrderAccepted) and e.account == 1][0]
    assert (placed.type, placed.price, placed.time_in_force) == ("LIMIT", d("29985"), "GTC")
    # it sold into the bids down to 29,985 and rests there
    assert sum(t.quantity for t in trades(ev)) == d("1")


def test_take_profit_directions(h):
    buy_tp = algo(h, 1, "BUY", "TAKE_PROFIT_MARKET", quantity="0.1", trigger_price="29950",
                  working_type="MARK_PRICE")[0].algo_id
    sell_tp = algo(h, 1, "SELL", "TAKE_PROFIT_MARKET", quantity="0.1", trigger_price="30050",
                   working_type="MARK_PRICE")[0].algo_id
    ev = h.mark(BTC, "30050")
    assert [f.algo_id for f in of(ev, V.AlgoOrderTriggered)] == [sell_tp]
    ev = h.mark(BTC, "29950")
    assert [f.algo_id for f in of(ev, V.AlgoOrderTriggered)] == [buy_tp]


def test_several_triggers_fire_in_the_order_the_price_reached_them_then_by_id(h):
    ids = {}
    for name, trigger in (("far", "29960"), ("near", "29990"), ("mid", "29975"),
                          ("near2", "29990")):
        ids[name] = algo(h, 1, "SELL", "STOP_MARKET", quantity="0.01", trigger_price=trigger,
                         working_type="MARK_PRICE")[0].algo_id
    ev = h.mark(BTC, "29950")
    assert [f.algo_id for f in of(ev, V.AlgoOrderTriggered)] == [
        ids["near"], ids["near2"], ids["mid"], ids["far"]]


def test_a_triggered_order_failing_its_checks_is_rejected_with_the_code(h):
    h.account(5, "100")  # too little for a 1 BTC market order at 20x
    aid = algo(h, 5, "BUY", "STOP_MARKET", quantity="1", trigger_price="30100",
               working_type="MARK_PRICE")[0].algo_id
    ev = h.mark(BTC, "30100")
    rej = of(ev, V.AlgoOrderRejected)
    assert [(r.algo_id, r.code) for r in rej] == [(aid, -2019)]
    assert not of(ev, V.OrderAccepted)
    assert aid not in h.engine.conditional.algos


def test_price_protect_holds_a_trigger_while_mark_and_last_diverge(h):
    last_trade(h, "30000")
    aid = algo(h, 1, "SELL", "STOP_MARKET", quantity="0.1", trigger_price="29000",
               working_type="MARK_PRICE", price_protect=True)[0].algo_id
    ev = h.mark(BTC, "28000")  # |28,000 - 30,000| / 28,000 = 7.1 % > 5 %
    assert not of(ev, V.AlgoOrderTriggered) and aid in h.engine.conditional.algos
    last_trade(h, "29990")  # the last price near the bids; mark moves again within 5 %
    ev = h.mark(BTC, "28990")
    assert [f.algo_id for f in of(ev, V.AlgoOrderTriggered)] == [aid]


def test_trailing_stop_follows_the_highest_price_and_fires_on_the_callback(h):
    # a sell trailing stop, 1 % callback, activating at 30,200 on the mark
    aid = algo(h, 1, "SELL", "TRAILING_STOP_MARKET", quantity="0.1", callback_rate="1",
               activate_price="30200", working_type="MARK_PRICE")[0].algo_id
    a = h.engine.conditional.algos[aid]
    h.mark(BTC, "30100")
    assert not a.active
    h.mark(BTC, "30300")  # activates, highest 30,300
    assert a.active and a.extreme == d("30300")
    h.mark(BTC, "30600")  # a new high
    assert a.extreme == d("30600")
    ev = h.mark(BTC, "30295")  # 30,600 x 0.99 = 30,294: not yet
    assert not of(ev, V.AlgoOrderTriggered)
    assert a.extreme == d("30600")
    ev = h.mark(BTC, "30294")
    assert [(f.algo_id, f.price) for f in of(ev, V.AlgoOrderTriggered)] == [(aid, d("30294"))]


def test_buy_trailing_stop_without_activation_price_starts_at_the_latest_price(h):
    aid = algo(h, 1, "BUY", "TRAILING_STOP_MARKET", quantity="0.1", callback_rate="0.5",
               working_type="MARK_PRICE")[0].algo_id
    a = h.engine.conditional.algos[aid]
    assert a.active and a.extreme == d("30000")
    h.mark(BTC, "29000")  # a new low
    assert a.extreme == d("29000")
    assert not of(h.mark(BTC, "29144"), V.AlgoOrderTriggered)  # 29,000 x 1.005 = 29,145
    assert of(h.mark(BTC, "29145"), V.AlgoOrderTriggered)


def test_trailing_stops_placed_at_different_times_share_a_bucket_after_a_new_high(h):
    first = algo(h, 1, "SELL", "TRAILING_STOP_MARKET", quantity="0.01", callback_rate="2",
                 working_type="MARK_PRICE")[0].algo_id
    h.mark(BTC, "29500")  # the first's trigger is 30,000 x 0.98 = 29,400: it waits
    second = algo(h, 1, "SELL", "TRAILING_STOP_MARKET", quantity="0.01", callback_rate="1",
                  working_type="MARK_PRICE")[0].algo_id
    book = h.engine.conditional.books[(BTC, 0)].trail_sell
    assert sorted(book.buckets) == [d("29500"), d("30000")]
    h.mark(BTC, "31000")
    assert sorted(book.buckets) == [d("31000")]  # one bucket: both trail the same high
    ev = h.mark(BTC, "30690")  # 31,000 x 0.99: the 1 % one fires, the 2 % one waits
    assert [f.algo_id for f in of(ev, V.AlgoOrderTriggered)] == [second]
    ev = h.mark(BTC, "30380")  # 31,000 x 0.98
    assert [f.algo_id for f in of(ev, V.AlgoOrderTriggered)] == [first]


# -- closePosition and release ---------------------------------------------------------------------
def test_close_position_rules_and_closing_the_whole_position(h):
    assert rejection(algo(h, 1, "SELL", "STOP_MARKET", close_position=True,
                          trigger_price="29000")) == -4509  # no position
    h.order(1, BTC, "BUY", "2", "30050", tif="IOC")  # long 2
    assert rejection(algo(h, 1, "SELL", "STOP_MARKET", close_position=True, quantity="1",
                          trigger_price="29000")) == -4137
    assert rejection(algo(h, 1, "SELL", "STOP_MARKET", close_position=True, reduce_only=False,
                          trigger_price="29000")) == -4138
    assert rejection(algo(h, 1, "SELL", "STOP", close_position=True, price="28990",
                          trigger_price="29000")) == -4136
    aid = algo(h, 1, "SELL", "STOP_MARKET", close_position=True, trigger_price="29980",
               working_type="MARK_PRICE")[0].algo_id
    assert rejection(algo(h, 1, "SELL", "STOP_MARKET", close_position=True,
                          trigger_price="29900", working_type="MARK_PRICE")) == -4130
    h.order(1, BTC, "BUY", "0.5", "30050", tif="IOC")  # now long 2.5
    ev = h.mark(BTC, "29980")
    fired = of(ev, V.AlgoOrderTriggered)
    assert [f.algo_id for f in fired] == [aid]
    placed = [e for e in ev if isinstance(e, V.OrderAccepted) and e.account == 1][0]
    assert placed.quantity == d("2.5") and placed.reduce_only
    assert h.position(1, BTC).qty == 0


def test_reduce_only_and_close_position_orders_expire_when_the_position_closes(h):
    h.order(1, BTC, "BUY", "1", "30010", tif="IOC")  # long 1
    tp = algo(h, 1, "SELL", "TAKE_PROFIT_MARKET", close_position=True, trigger_price="31000",
              working_type="MARK_PRICE")[0].algo_id
    sl = algo(h, 1, "SELL", "STOP_MARKET", quantity="1", reduce_only=True,
              trigger_price="29000", working_type="MARK_PRICE")[0].algo_id
    free = algo(h, 1, "BUY", "STOP_MARKET", quantity="1", trigger_price="31000",
                working_type="MARK_PRICE")[0].algo_id
    ev = h.order(1, BTC, "SELL", "1", "29990", tif="IOC")  # closes the long
    expired = of(ev, V.AlgoOrderExpired)
    assert sorted((x.algo_id, x.reason) for x in expired) == [(tp, "positionClosed"),
                                                               (sl, "positionClosed")]
    assert list(h.engine.conditional.algos) == [free]


def test_cancel_by_id_and_client_id_and_cancel_all(h):
    a = algo(h, 1, "BUY", "STOP_MARKET", quantity="0.1", trigger_price="31000",
             client_algo_id="x")[0].algo_id
    b = algo(h, 1, "BUY", "STOP_MARKET", quantity="0.1", trigger_price="31100")[0].algo_id
    c = algo(h, 1, "BUY", "STOP_MARKET", quantity="0.1", trigger_price="31200")[0].algo_id
    assert rejection(h.send(C.CancelAlgoOrder(account=2, algo_id=a))) == -2011  # not yours
    assert kinds(h.send(C.CancelAlgoOrder(account=1, client_algo_id="x"))) == [
        "AlgoOrderCanceled"]
    assert rejection(h.send(C.CancelAlgoOrder(account=1, algo_id=a))) == -2011
    ev = h.send(C.CancelAllOrders(account=1, symbol=BTC))  # ordinary cancel-all takes them too
    assert [e.algo_id for e in of(ev, V.AlgoOrderCanceled)] == [b, c]
    assert h.engine.conditional.algos == {}


def test_a_liquidation_expires_the_accounts_conditional_orders():
    h = Harness()
    h.account(1, "1000")
    h.account(2, "1000000")
    h.leverage(1, BTC, 50)
    h.mark(BTC, "30000")
    h.order(2, BTC, "SELL", "1", "30000")
    h.order(1, BTC, "BUY", "1", "30000")  # long 1 at 50x with 1,000
    aid = algo(h, 1, "SELL", "STOP_MARKET", quantity="1", reduce_only=True,
               trigger_price="20000", working_type="MARK_PRICE")[0].algo_id
    h.order(2, BTC, "BUY", "2", "29000")
    h.mark(BTC, "29100")  # balance 985 - 900 = 85 < MM 116.4
    ev = h.send(C.Liquidate(account=1))  # what the risk consumer asks for at 100 %
    started = of(ev, V.LiquidationStarted)
    assert started and [(x.algo_id, x.reason) for x in of(ev, V.AlgoOrderExpired)] == [
        (aid, "liquidation")]


# -- determinism ---------------------------------------------------------------------------------
def test_rebuild_from_events_snapshot_and_redrive_give_the_same_state(h):
    algo(h, 1, "SELL", "TRAILING_STOP_MARKET", quantity="0.1", callback_rate="1",
         working_type="MARK_PRICE")
    algo(h, 1, "SELL", "TRAILING_STOP_MARKET", quantity="0.1", callback_rate="0.5",
         activate_price="30500", working_type="MARK_PRICE")
    algo(h, 1, "BUY", "STOP", quantity="0.2", price="30030", trigger_price="30020")
    for price in ("30100", "30600", "30400", "29900"):
        h.mark(BTC, price)
    last_trade(h, "30020")
    live = h.engine.state_hash()
    rebuilt = Harness().engine
    for seq, time, _, events in h.records:
        rebuilt.apply_record(seq, time, events)
    assert rebuilt.state_hash() == live
    restored = restore(h.engine.catalogue, take(h.engine), EngineConfig(checkpoint_every=0))
    assert restored.state_hash() == live
    redriven = Harness()
    for seq, time, cmd, events in h.records:
        assert redriven.engine.handle(cmd, seq, time) == events
    assert redriven.engine.state_hash() == live
    # the restored engine goes on exactly as the live one
    for engine in (restored, h.engine):
        engine.handle(C.SetMarkPrice(symbol=BTC, mark_price=d("30200")), 999, h.time)
    assert restored.state_hash() == h.engine.state_hash()


# -- a triggered order matches as the same ordinary order would ------------------------------------
@pytest.mark.parametrize("seed", range(6))
def test_a_triggered_order_trades_exactly_as_the_same_ordinary_order(seed):
    """Engine A holds conditional orders; engine B gets no conditional order, but at each of
    A's triggers the very order A placed, sent as an ordinary command at that moment. Leaving
    out A's AlgoOrder* events, both produce the same events."""
    import random
    rng = random.Random(seed)

    def fresh():
        h = Harness()
        for a in range(1, 7):
            h.account(a, "500000")
        h.send(C.SetPositionMode(account=6, dual_side_position=True))
        h.mark(BTC, "30000")
        return h

    a_side, b_side = fresh(), fresh()
    flat_a, flat_b = [], []
    mark = 30000
    for _ in range(400):
        acct = rng.randint(1, 6)
        ps = rng.choice(("LONG", "SHORT")) if acct == 6 else None
        side = rng.choice(("BUY", "SELL"))
        qty = d(str(rng.choice((1, 3, 5)) / 100))
        r = rng.random()
        if r < 0.5:
            cmd = C.NewOrder(account=acct, symbol=BTC, side=side, type="LIMIT", quantity=qty,
                             price=d(str(mark + rng.randint(-15, 15) * 10)),
                             time_in_force="GTC", position_side=ps)
        elif r < 0.6:
            cmd = C.NewOrder(account=acct, symbol=BTC, side=side, type="MARKET", quantity=qty,
                             position_side=ps)
        elif r < 0.85:
            kind = rng.choice(("STOP_MARKET", "TAKE_PROFIT_MARKET", "STOP", "TRAILING"))
            step = rng.randint(1, 20) * 10
            if kind == "TRAILING":
                cmd = C.NewAlgoOrder(account=acct, symbol=BTC, side=side,
                                     type="TRAILING_STOP_MARKET", quantity=qty,
                                     callback_rate=d("0.3"), working_type="MARK_PRICE",
                                     position_side=ps)
            else:
                up = (side == "BUY") == (kind != "TAKE_PROFIT_MARKET")
                trigger = d(str(mark + step if up else mark - step))
                cmd = C.NewAlgoOrder(account=acct, symbol=BTC, side=side, type=kind,
                                     quantity=qty, trigger_price=trigger,
                                     price=trigger if kind == "STOP" else 0,
                                     working_type=rng.choice(("MARK_PRICE", "CONTRACT_PRICE")),
                                     position_side=ps)
        else:
            mark = max(25000, min(35000, mark + rng.randint(-200, 200)))
            cmd = C.SetMarkPrice(symbol=BTC, mark_price=d(str(mark)))
        events = a_side.send(cmd)
        if isinstance(cmd, C.NewAlgoOrder):  # accepted or refused: B has no such command
            continue
        flat_a += [e for e in events if not type(e).__name__.startswith("Algo")]
        flat_b += b_side.send(cmd)
        for i, e in enumerate(events):
            if isinstance(e, V.AlgoOrderTriggered):
                placed = events[i + 1]
                assert isinstance(placed, V.OrderAccepted) and placed.order_id == e.order_id
                hedged = a_side.engine.accounts[placed.account].dual_side
                flat_b += b_side.send(C.NewOrder(
                    account=placed.account, symbol=BTC, side=placed.side, type=placed.type,
                    quantity=placed.quantity,
                    price=placed.price if placed.type == "LIMIT" else 0,
                    time_in_force=placed.time_in_force if placed.type == "LIMIT" else None,
                    reduce_only=None if hedged else placed.reduce_only,
                    position_side=placed.position_side if hedged else None,
                    self_trade_prevention_mode=placed.stp_mode))
    assert any(isinstance(e, V.AlgoOrderTriggered) for *_, evs in a_side.records for e in evs)
    assert flat_a == flat_b
