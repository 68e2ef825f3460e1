"""Scenario tests: commands in, exact events out. Every order type, check and code."""
import pytest

from engine.core import catalogue as catalogue_mod
from engine.core import EngineConfig
from engine.core.timeutil import parse_iso_ms
from proto import commands as C
from proto import events as V
from tests.harness import Harness, d, kinds, rejection, trades

BTC = "BTCUSDT"


@pytest.fixture
def h():
    h = Harness()
    h.account(1, "1000000")
    h.account(2, "1000000")
    h.account(3, "1000000")
    return h


# -- order types -----------------------------------------------------------------------------
def test_gtc_limit_rests_then_fills_at_the_makers_price(h):
    ev = h.order(1, BTC, "SELL", "0.010", "30000", new_client_order_id="s1")
    assert kinds(ev) == ["OrderAccepted"] and ev[0].rest and ev[0].order_id == 1
    assert h.book(BTC, "SELL") == [(1, d("30000"), d("0.010"))]
    ev = h.order(2, BTC, "BUY", "0.004", "30100")
    assert kinds(ev) == ["OrderAccepted", "Trade"]
    t = ev[1]
    assert (t.price, t.quantity, t.maker_order_id, t.taker_order_id) == (d("30000"), d("0.004"), 1, 2)
    # fees: notional 120 USDT; maker 0.02% = 0.024, taker 0.05% = 0.06
    assert (t.maker_fee, t.taker_fee) == (d("0.024"), d("0.06"))
    assert h.book(BTC, "SELL") == [(1, d("30000"), d("0.006"))]
    assert h.book(BTC, "BUY") == []  # the taker filled completely


def test_price_time_priority(h):
    h.order(1, BTC, "SELL", "0.001", "30000")  # id 1
    h.order(2, BTC, "SELL", "0.001", "29999.9")  # id 2: better price
    h.order(3, BTC, "SELL", "0.001", "30000")  # id 3: same price, later
    ev = h.order(1, BTC, "BUY", "0.003", "30000", self_trade_prevention_mode="NONE")
    assert [t.maker_order_id for t in trades(ev)] == [2, 1, 3]


def test_taker_remainder_rests_after_partial_fill(h):
    h.order(1, BTC, "SELL", "0.002", "30000")
    ev = h.order(2, BTC, "BUY", "0.005", "30000")
    assert kinds(ev) == ["OrderAccepted", "Trade", "OrderRested"]
    assert ev[2].quantity == d("0.003")
    assert h.book(BTC, "BUY") == [(2, d("30000"), d("0.003"))]


def test_ioc_fills_what_it_can_and_expires_the_rest(h):
    h.order(1, BTC, "SELL", "0.002", "30000")
    ev = h.order(2, BTC, "BUY", "0.005", "30000", tif="IOC")
    assert kinds(ev) == ["OrderAccepted", "Trade", "OrderExpired"]
    assert (ev[2].status, ev[2].quantity) == ("EXPIRED", d("0.003"))
    assert h.book(BTC, "BUY") == []


def test_fok_fills_completely_or_is_rejected(h):
    h.order(1, BTC, "SELL", "0.002", "30000")
    h.order(1, BTC, "SELL", "0.002", "30010")
    before = h.engine.state_hash()
    ev = h.order(2, BTC, "BUY", "0.005", "30010", tif="FOK")
    assert rejection(ev) == -5021 and h.engine.state_hash() == before
    ev = h.order(2, BTC, "BUY", "0.004", "30010", tif="FOK")
    assert [t.quantity for t in trades(ev)] == [d("0.002"), d("0.002")]
    assert h.book(BTC, "SELL") == []


def test_gtx_post_only_rests_or_is_rejected(h):
    h.order(1, BTC, "SELL", "0.002", "30000")
    before = h.engine.state_hash()
    assert rejection(h.order(2, BTC, "BUY", "0.001", "30000", tif="GTX")) == -5022
    assert h.engine.state_hash() == before
    ev = h.order(2, BTC, "BUY", "0.001", "29999.9", tif="GTX")
    assert kinds(ev) == ["OrderAccepted"] and ev[0].rest


def test_market_order_walks_the_book_and_expires_its_remainder(h):
    h.order(1, BTC, "SELL", "0.001", "30000")
    h.order(1, BTC, "SELL", "0.001", "30100")
    ev = h.order(2, BTC, "BUY", "0.003")
    assert [(t.price, t.quantity) for t in trades(ev)] == [(d("30000"), d("0.001")), (d("30100"), d("0.001"))]
    assert isinstance(ev[-1], V.OrderExpired) and ev[-1].quantity == d("0.001")


def test_market_order_rejects_a_price(h):
    ev = h.send(C.NewOrder(account=1, symbol=BTC, side="BUY", type="MARKET", quantity=d("0.001"),
                           price=d("30000")))
    assert rejection(ev) == -1106


def test_cancel_by_id_and_by_client_id_and_cancel_all(h):
    h.order(1, BTC, "BUY", "0.001", "29000", new_client_order_id="a")
    h.order(1, BTC, "BUY", "0.001", "29001")
    h.order(1, BTC, "SELL", "0.001", "31000")
    h.order(2, BTC, "SELL", "0.001", "31001")
    ev = h.cancel(1, BTC, client_id="a")
    assert kinds(ev) == ["OrderCanceled"] and ev[0].order_id == 1
    assert rejection(h.cancel(1, BTC, order_id=1)) == -2011  # already gone
    ev = h.send(C.CancelAllOrders(account=1, symbol=BTC))
    assert [e.order_id for e in ev] == [2, 3]
    assert h.book(BTC, "SELL") == [(4, d("31001"), d("0.001"))]
    assert h.position(1, BTC).open_orders == 0
    # the client id is free again once its order is gone
    assert kinds(h.order(1, BTC, "BUY", "0.001", "29000", new_client_order_id="a")) == ["OrderAccepted"]


def test_cancel_of_another_accounts_order_is_unknown_and_changes_nothing(h):
    h.order(1, BTC, "BUY", "0.001", "29000")
    before = h.engine.state_hash()
    ev = h.cancel(2, BTC, order_id=1)
    assert rejection(ev) == -2011 and h.engine.state_hash() == before


def test_modify_keeps_priority_only_for_same_price_and_no_larger_quantity(h):
    h.order(1, BTC, "BUY", "0.003", "29000")  # 1
    h.order(2, BTC, "BUY", "0.003", "29000")  # 2
    ev = h.modify(1, BTC, 1, "0.002", "29000")
    assert ev[0].kept_priority
    assert h.book(BTC, "BUY") == [(1, d("29000"), d("0.002")), (2, d("29000"), d("0.003"))]
    ev = h.modify(1, BTC, 1, "0.004", "29000")  # grows: to the back
    assert not ev[0].kept_priority
    assert h.book(BTC, "BUY") == [(2, d("29000"), d("0.003")), (1, d("29000"), d("0.004"))]
    ev = h.modify(2, BTC, 2, "0.003", "29000.1")  # new price: loses priority, own level
    assert not ev[0].kept_priority
    assert h.book(BTC, "BUY")[0] == (2, d("29000.1"), d("0.003"))
    assert rejection(h.modify(2, BTC, 2, "0.003", "29000.1")) == -5027


def test_modify_that_crosses_trades(h):
    h.order(1, BTC, "SELL", "0.002", "30000")
    h.order(2, BTC, "BUY", "0.002", "29000")
    ev = h.modify(2, BTC, 2, "0.002", "30000")
    assert kinds(ev) == ["OrderModified", "Trade"]
    assert h.book(BTC, "SELL") == [] and h.book(BTC, "BUY") == []


def test_modify_after_partial_fill_counts_the_executed_quantity(h):
    h.order(1, BTC, "BUY", "0.005", "29000")
    h.order(2, BTC, "SELL", "0.002", "29000")
    assert rejection(h.modify(1, BTC, 1, "0.002", "29000")) is not None  # not above executed
    h.modify(1, BTC, 1, "0.004", "29000")
    assert h.book(BTC, "BUY") == [(1, d("29000"), d("0.002"))]


def test_reduce_only(h):
    assert rejection(h.order(1, BTC, "SELL", "0.001", "30000", reduce_only=True)) == -2022
    h.order(2, BTC, "SELL", "0.002", "30000")
    h.order(1, BTC, "BUY", "0.002", "30000")  # account 1 long 0.002
    assert rejection(h.order(1, BTC, "BUY", "0.001", "29000", reduce_only=True)) == -2022
    assert rejection(h.order(1, BTC, "SELL", "0.003", "31000", reduce_only=True)) == -2022
    ev = h.order(1, BTC, "SELL", "0.002", "31000", reduce_only=True)
    assert kinds(ev) == ["OrderAccepted"]
    # reduce-only is exempt from min notional: 0.001 x 100 = 0.1 USDT
    h.cancel(1, BTC, order_id=ev[0].order_id)
    h.order(3, BTC, "BUY", "0.002", "26000")
    assert kinds(h.order(1, BTC, "SELL", "0.001", "26000", reduce_only=True))[:2] == ["OrderAccepted", "Trade"]


def test_resting_reduce_only_order_expires_when_the_position_is_gone(h):
    h.order(2, BTC, "SELL", "0.002", "30000")
    h.order(1, BTC, "BUY", "0.002", "30000")  # 1 long 0.002
    ro = h.order(1, BTC, "SELL", "0.002", "31000", reduce_only=True)[0].order_id
    h.order(3, BTC, "BUY", "0.002", "29000")
    h.order(1, BTC, "SELL", "0.002", "29000")  # closes the position at 29000
    assert h.position(1, BTC).qty == 0
    ev = h.order(3, BTC, "BUY", "0.002", "31000")  # reaches the reduce-only order
    expired = [e for e in ev if isinstance(e, V.OrderExpired)]
    assert expired and expired[0].order_id == ro and expired[0].reason == "reduceOnly"
    assert not trades(ev) or all(t.maker_order_id != ro for t in trades(ev))


# -- self-trade prevention -------------------------------------------------------------------
@pytest.mark.parametrize("mode,expect", [
    ("NONE", {"trades": [1, 2], "maker_expired": [], "taker": None}),
    ("EXPIRE_MAKER", {"trades": [2], "maker_expired": [1], "taker": None}),
    ("EXPIRE_TAKER", {"trades": [], "maker_expired": [], "taker": "EXPIRED_IN_MATCH"}),
    ("EXPIRE_BOTH", {"trades": [], "maker_expired": [1], "taker": "EXPIRED_IN_MATCH"}),
])
def test_self_trade_prevention_taker_mode_decides(h, mode, expect):
    h.order(1, BTC, "SELL", "0.001", "30000", self_trade_prevention_mode="NONE")  # own maker
    h.order(2, BTC, "SELL", "0.001", "30000")  # another account behind it
    ev = h.order(1, BTC, "BUY", "0.002", "30000", tif="IOC", self_trade_prevention_mode=mode)
    assert [t.maker_order_id for t in trades(ev)] == expect["trades"]
    exp = [e for e in ev if isinstance(e, V.OrderExpired)]
    assert [e.order_id for e in exp if e.order_id != 3] == expect["maker_expired"]
    assert all(e.status == "EXPIRED_IN_MATCH" for e in exp if e.order_id != 3)
    taker = [e for e in exp if e.order_id == 3]
    if expect["taker"]:
        assert taker[0].status == expect["taker"]


def test_stp_is_not_applied_to_fok(h):
    h.order(1, BTC, "SELL", "0.001", "30000")
    ev = h.order(1, BTC, "BUY", "0.001", "30000", tif="FOK", self_trade_prevention_mode="EXPIRE_BOTH")
    assert len(trades(ev)) == 1


def test_default_stp_mode_is_configurable():
    h = Harness(config=EngineConfig(checkpoint_every=0, default_stp="NONE"))
    h.account(1, "100000")
    h.order(1, BTC, "SELL", "0.001", "30000")
    assert len(trades(h.order(1, BTC, "BUY", "0.001", "30000"))) == 1


# -- filters and rejection codes -------------------------------------------------------------
@pytest.mark.parametrize("side,qty,price,code", [
    ("BUY", "0", "30000", -4003),
    ("BUY", "-0.001", "30000", -4003),
    ("BUY", "0.001", "0", -1102),  # no price: Binance's mandatory-parameter code
    ("BUY", "0.001", "-1", -4001),
    ("BUY", "0.001", "30000.05", -4014),
    ("BUY", "0.001", "20000000", -4002),
    ("BUY", "0.0001", "30000", -4004),
    ("BUY", "1001", "30000", -4005),
    ("BUY", "0.0015", "30000", -4023),
    ("BUY", "0.001", "4000", -4164),  # 4 USDT < 5
])
def test_order_filters(h, side, qty, price, code):
    before = h.engine.state_hash()
    ev = h.order(1, BTC, side, qty, price)
    assert kinds(ev) == ["OrderRejected"] and ev[0].code == code and ev[0].msg
    assert h.engine.state_hash() == before


def test_price_below_min_price():
    cat = catalogue_mod.load(overrides={"symbols": [{"symbol": BTC, "minPrice": "100"}]})
    h = Harness(cat)
    h.account(1)
    assert rejection(h.order(1, BTC, "BUY", "0.1", "99.9")) == -4013


def test_market_lot_size(h):
    assert rejection(h.order(1, BTC, "BUY", "121")) == -4005  # market max 120 < limit max 1000


def test_unknown_symbol_and_unknown_account(h):
    assert rejection(h.order(1, "NOPEUSDT", "BUY", "1", "1")) == -1121
    assert rejection(h.order(99, BTC, "BUY", "0.001", "30000")) == -2015


def test_price_band_against_mark(h):
    h.mark(BTC, "30000")
    assert rejection(h.order(1, BTC, "BUY", "0.001", "34500.1")) == -4016
    assert kinds(h.order(1, BTC, "BUY", "0.001", "34500")) == ["OrderAccepted"]
    assert rejection(h.order(2, BTC, "SELL", "0.001", "25499.9")) == -4024
    ev = h.order(2, BTC, "SELL", "0.001", "25500")  # on the band edge: accepted, takes the bid
    assert kinds(ev) == ["OrderAccepted", "Trade"] and ev[1].price == d("34500")


def test_max_open_orders_per_symbol():
    cat = catalogue_mod.load(overrides={"symbols": [{"symbol": BTC, "maxNumOrders": 3}]})
    h = Harness(cat)
    h.account(1)
    for i in range(3):
        assert kinds(h.order(1, BTC, "BUY", "0.001", f"2900{i}")) == ["OrderAccepted"]
    assert rejection(h.order(1, BTC, "BUY", "0.001", "29010")) == -2025


def test_duplicate_client_order_id(h):
    h.order(1, BTC, "BUY", "0.001", "29000", new_client_order_id="x")
    assert rejection(h.order(1, BTC, "BUY", "0.001", "29000", new_client_order_id="x")) == -4116
    # unique per account: another account may use it
    assert kinds(h.order(2, BTC, "BUY", "0.001", "29000", new_client_order_id="x")) == ["OrderAccepted"]


# -- leverage and margin ---------------------------------------------------------------------
def test_leverage_cap_at_21x_is_1_000_000(h):
    h.leverage(1, BTC, 21)
    assert rejection(h.order(1, BTC, "BUY", "33.334", "30000")) == -2027  # 1,000,020
    assert kinds(h.order(1, BTC, "BUY", "33.333", "30000")) == ["OrderAccepted"]  # 999,990
    # position + open orders on the same side + this order count together
    assert rejection(h.order(1, BTC, "BUY", "0.001", "30000")) == -2027
    # the other side has its own room
    assert kinds(h.order(1, BTC, "SELL", "0.001", "40000")) == ["OrderAccepted"]


def test_leverage_cap_exactly_at_the_boundary(h):
    h.leverage(1, BTC, 100)
    assert kinds(h.order(1, BTC, "BUY", "10", "25000")) == ["OrderAccepted"]  # exactly 250,000
    h.leverage(2, BTC, 100)
    assert rejection(h.order(2, BTC, "BUY", "10.001", "25000")) == -2027


def test_set_leverage_validation(h):
    assert rejection(h.leverage(1, BTC, 126)) == -4028
    assert rejection(h.leverage(1, BTC, 0)) == -4028
    h.order(1, BTC, "BUY", "10", "30000")  # 300,000 at 20x
    assert rejection(h.leverage(1, BTC, 100)) == -2027  # cap 250,000 at 100x
    assert kinds(h.leverage(1, BTC, 50)) == ["LeverageChanged"]


def test_initial_margin_must_fit_available_balance():
    h = Harness()
    h.account(1, "100")
    # 20x default: 0.066 BTC @ 30,000 = 1,980 notional -> 99 margin + 0.99 fee = 99.99
    assert kinds(h.order(1, BTC, "BUY", "0.066", "30000")) == ["OrderAccepted"]
    assert rejection(h.order(1, BTC, "BUY", "0.001", "30000")) == -2019
    # an order on the other side that only closes nothing yet also needs margin
    assert rejection(h.order(1, BTC, "SELL", "0.001", "31000")) == -2019


def test_ethusdt_table_switch_changes_the_allowed_leverage():
    h = Harness(time=parse_iso_ms("2022-09-13T06:59:59Z"))
    h.account(1, "1000000")
    assert kinds(h.leverage(1, "ETHUSDT", 100)) == ["LeverageChanged"]
    assert kinds(h.order(1, "ETHUSDT", "BUY", "60", "1600")) == ["OrderAccepted"]  # 96,000 < 100,000
    h.time = parse_iso_ms("2022-09-13T07:00:00Z")
    assert rejection(h.leverage(1, "ETHUSDT", 100)) == -4028
    assert kinds(h.leverage(1, "ETHUSDT", 75)) == ["LeverageChanged"]
    sym = h.engine.symbols["ETHUSDT"]
    assert sym.table_at(h.time).name == "ETHUSDT-75x-from-2022-09-13"
    assert sym.table_at(parse_iso_ms("2022-09-13T06:59:59.999Z")).max_leverage == 100


# -- accounts and positions ------------------------------------------------------------------
def test_positions_entry_realized_pnl_and_flip(h):
    h.order(2, BTC, "SELL", "0.002", "30000")
    h.order(1, BTC, "BUY", "0.002", "30000")
    h.order(2, BTC, "SELL", "0.002", "31000")
    h.order(1, BTC, "BUY", "0.002", "31000")
    p = h.position(1, BTC)
    assert p.qty == d("0.004") and p.entry_price() == d("30500")
    w = h.wallet(1)
    h.order(3, BTC, "BUY", "0.006", "32000")
    ev = h.order(1, BTC, "SELL", "0.006", "32000")  # closes 0.004, flips to short 0.002
    t = trades(ev)[0]
    assert t.taker_realized_pnl == d("0.004") * (d("32000") - d("30500")) // 10**8  # 6 USDT
    assert h.wallet(1) == w + t.taker_realized_pnl - t.taker_fee
    p = h.position(1, BTC)
    assert p.qty == -d("0.002") and p.entry_price() == d("32000")


def test_withdraw_only_from_available(h):
    h.order(1, BTC, "BUY", "1", "30000")  # holds 1,500 + 15 fee of margin
    h.order(2, BTC, "SELL", "1", "30000")
    w = h.wallet(1)
    assert rejection(h.send(C.Withdraw(account=1, amount=w))) == -5013
    ev = h.send(C.Withdraw(account=1, amount=d("1000")))
    assert kinds(ev) == ["Withdrawn"] and h.wallet(1) == w - d("1000")
    assert rejection(h.send(C.Withdraw(account=1, amount=0))) == -1130


def test_checkpoints_carry_the_state_hash():
    h = Harness(config=EngineConfig(checkpoint_every=3))
    h.account(1)
    ev = h.order(1, BTC, "BUY", "0.001", "29000")
    assert isinstance(ev[-1], V.Checkpoint) and ev[-1].seq == 3
    assert ev[-1].state_hash == h.engine.state_hash()
