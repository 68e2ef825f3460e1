"""Conditional orders as the core keeps them while they wait (engine.core.conditional places,
cancels and fires them): AlgoOrder, and per (symbol, working price) a TriggerBook.

A TriggerBook keeps its triggers sorted (stops and take-profits by trigger price, trailing
stops waiting for activation by their activation price), so a price move visits only the
triggers it crossed, never a scan; the nearest entry of each list is kept as a plain int, so a
move that reaches nothing costs a few comparisons. Active trailing stops of one direction sit
in buckets that share their extreme (the highest price since activation for a sell, the lowest
for a buy) and each order points at its bucket: a new high merges every bucket below it into
the largest of them, whose extreme becomes the high, so a rising price touches the buckets it
passed (and the orders of the smaller ones), not each order.
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right, insort

from sortedcontainers import SortedList

from engine.core.book import BUY, SELL
from engine.core.fixed import SCALE
from engine.core.ledger import LAST, MARK
from proto import events as V

UP, DOWN = 1, -1  # fires when the price reaches the trigger from below / from above
HUNDRED = 100 * SCALE  # callbackRate is in percent: 1 = 1 % (1e-8 units)
SOURCES = {"MARK_PRICE": MARK, "CONTRACT_PRICE": LAST}


def direction(order_type: str, side: str) -> int:
    """UP: fires when the price rises to the trigger; DOWN: when it falls to it."""
    if order_type in ("STOP", "STOP_MARKET"):
        return UP if side == BUY else DOWN
    if order_type in ("TAKE_PROFIT", "TAKE_PROFIT_MARKET"):
        return DOWN if side == BUY else UP
    return UP if side == BUY else DOWN  # trailing: a buy fires on the rebound up


def trail_threshold(extreme: int, rate: int, side: str) -> int:
    """A trailing stop's trigger from its extreme: a sell fires at or below
    floor(highest x (1 - rate)), a buy at or above ceil(lowest x (1 + rate))."""
    if side == SELL:
        return extreme * (HUNDRED - rate) // HUNDRED
    return -(-(extreme * (HUNDRED + rate)) // HUNDRED)


class AlgoOrder:
    __slots__ = ("algo_id", "account", "symbol", "side", "position_side", "type", "quantity",
                 "price", "trigger", "source", "price_protect", "close_position",
                 "reduce_only", "activate", "rate", "tif", "client_id", "stp", "price_match",
                 "gtd", "direction", "active", "bucket", "created")

    def __init__(self, ev: V.AlgoOrderAccepted, created: int) -> None:
        self.algo_id = ev.algo_id
        self.account = ev.account
        self.symbol = ev.symbol
        self.side = ev.side
        self.position_side = ev.position_side
        self.type = ev.order_type
        self.quantity = ev.quantity
        self.price = ev.price
        self.trigger = ev.trigger_price
        self.source = SOURCES[ev.working_type]
        self.price_protect = ev.price_protect
        self.close_position = ev.close_position
        self.reduce_only = ev.reduce_only
        self.activate = ev.activate_price
        self.rate = ev.callback_rate
        self.tif = ev.time_in_force
        self.client_id = ev.client_algo_id
        self.stp = ev.stp_mode
        self.price_match = ev.price_match
        self.gtd = ev.good_till_date
        self.direction = direction(ev.order_type, ev.side)
        self.active = False  # trailing: activation reached
        # trailing, once active: the bucket holding its extreme (TrailBucket)
        self.bucket: TrailBucket | None = None
        self.created = created  # ms

    @property
    def extreme(self) -> int:
        """Trailing: the highest (sell) or lowest (buy) price since activation; 0 before."""
        bucket = self.bucket
        return bucket.extreme if bucket is not None else 0

    @property
    def trailing(self) -> bool:
        return self.type == "TRAILING_STOP_MARKET"

    @property
    def activation_key(self) -> int:
        """A trailing stop waiting for activation: a sell activates once the price reaches
        this from below, a buy from above (no activatePrice and no price yet: the first)."""
        if self.activate:
            return self.activate
        return 0 if self.side == SELL else 1 << 62

    @property
    def bound_to_position(self) -> bool:
        """Released when its position closes."""
        return self.close_position or self.reduce_only


NO_HIGH = 1 << 62  # above every price: an empty list's "lowest"
NO_LOW = -1  # below every price: an empty list's "highest"


class TrailBucket:
    """Active trailing stops of one side that share their extreme price; each order points at
    its bucket (AlgoOrder.bucket), so a new extreme changes one field, not every order."""
    __slots__ = ("extreme", "members")

    def __init__(self, extreme: int) -> None:
        self.extreme = extreme
        self.members: SortedList = SortedList()  # (rate, algo id), most sensitive first


class TrailBuckets:
    """Active trailing stops of one side on one (symbol, working price), in buckets by their
    shared extreme. A bucket's threshold is its first (most sensitive) order's trigger. The
    extremes and thresholds are plain sorted lists searched with bisect (the buckets are few:
    a move merges every bucket it passes), and their edges are kept as ints (`low_extreme`,
    `high_extreme`, `edge`), so a price that passes no bucket and reaches no threshold costs
    two comparisons."""
    __slots__ = ("side", "buckets", "extremes", "thresholds", "low_extreme", "high_extreme",
                 "edge")

    def __init__(self, side: str) -> None:
        self.side = side
        self.buckets: dict[int, TrailBucket] = {}  # extreme -> bucket
        self.extremes: list[int] = []  # ascending
        self.thresholds: list[tuple[int, int]] = []  # (threshold, extreme), ascending
        self.low_extreme = NO_HIGH
        self.high_extreme = NO_LOW
        # the threshold a price must reach for any order to fire: the highest for sells
        # (they fire at or below it), the lowest for buys
        self.edge = NO_LOW if side == SELL else NO_HIGH

    def _edges(self) -> None:
        extremes, thresholds = self.extremes, self.thresholds
        if extremes:
            self.low_extreme, self.high_extreme = extremes[0], extremes[-1]
            self.edge = thresholds[-1][0] if self.side == SELL else thresholds[0][0]
        else:
            self.low_extreme, self.high_extreme = NO_HIGH, NO_LOW
            self.edge = NO_LOW if self.side == SELL else NO_HIGH

    def _threshold(self, bucket: TrailBucket) -> tuple[int, int]:
        rate = bucket.members[0][0]
        return trail_threshold(bucket.extreme, rate, self.side), bucket.extreme

    def _drop_threshold(self, bucket: TrailBucket) -> None:
        thresholds = self.thresholds
        del thresholds[bisect_left(thresholds, self._threshold(bucket))]

    def add(self, extreme: int, algo: AlgoOrder) -> None:
        bucket = self.buckets.get(extreme)
        if bucket is None:
            bucket = self.buckets[extreme] = TrailBucket(extreme)
            insort(self.extremes, extreme)
        else:
            self._drop_threshold(bucket)
        bucket.members.add((algo.rate, algo.algo_id))
        algo.bucket = bucket
        insort(self.thresholds, self._threshold(bucket))
        self._edges()

    def remove(self, algo: AlgoOrder) -> None:
        bucket = algo.bucket
        assert bucket is not None  # an active trailing stop is in a bucket
        self._drop_threshold(bucket)
        bucket.members.remove((algo.rate, algo.algo_id))
        if bucket.members:
            insort(self.thresholds, self._threshold(bucket))
        else:
            del self.buckets[bucket.extreme]
            extremes = self.extremes
            del extremes[bisect_left(extremes, bucket.extreme)]
        self._edges()

    def move(self, price: int, algos: dict[int, AlgoOrder]) -> None:
        """A new extreme: every bucket the price passed joins one bucket at `price`. The
        largest of them carries on as that bucket (its orders untouched); the others' orders
        are pointed at it (smaller into larger: each order moves O(log n) times at most)."""
        extremes = self.extremes
        if self.side == SELL:
            if self.low_extreme >= price:  # no high below the price: the common case
                return
            i = bisect_left(extremes, price)  # the highs below the price
            passed = extremes[:i]
            del extremes[:i]
        else:
            if self.high_extreme <= price:
                return
            i = bisect_right(extremes, price)  # the lows above the price
            passed = extremes[i:]
            del extremes[i:]
        joining = [self.buckets.pop(extreme) for extreme in passed]
        at_price = self.buckets.get(price)
        if at_price is not None:
            joining.append(at_price)
        for bucket in joining:
            self._drop_threshold(bucket)
        survivor = joining[0]
        for bucket in joining:  # the largest (the first of equals: deterministic)
            if len(bucket.members) > len(survivor.members):
                survivor = bucket
        for bucket in joining:
            if bucket is not survivor:
                for _, algo_id in bucket.members:
                    algos[algo_id].bucket = survivor
                survivor.members.update(bucket.members)
        survivor.extreme = price
        if at_price is None:
            insort(extremes, price)
        self.buckets[price] = survivor
        insort(self.thresholds, self._threshold(survivor))
        self._edges()

    def reached(self, price: int) -> list[tuple[int, int]]:
        """(threshold, algo id) of every order whose trigger the price has reached."""
        out: list[tuple[int, int]] = []
        thresholds = self.thresholds
        if self.side == SELL:  # fires at or below its threshold
            if self.edge < price:
                return out
            candidates = thresholds[bisect_left(thresholds, (price, -1)):]
        else:
            if self.edge > price:
                return out
            candidates = thresholds[:bisect_right(thresholds, (price, NO_HIGH))]
        for _, extreme in candidates:
            for rate, algo_id in self.buckets[extreme].members:
                threshold = trail_threshold(extreme, rate, self.side)
                if (threshold >= price) if self.side == SELL else (threshold <= price):
                    out.append((threshold, algo_id))
                else:
                    break
        return out


class TriggerBook:
    """The waiting conditional orders of one (symbol, working price), sorted by trigger; each
    list's nearest entry is kept as a plain int, so a price move that reaches nothing costs a
    few comparisons. `count`: the orders in it (all kinds)."""
    __slots__ = ("up", "down", "activate_up", "activate_down", "trail_sell", "trail_buy",
                 "up_first", "down_last", "activate_up_first", "activate_down_last", "count")

    def __init__(self) -> None:
        self.up: SortedList = SortedList()  # (trigger, algo id): fires when price >= trigger
        self.down: SortedList = SortedList()  # fires when price <= trigger
        self.activate_up: SortedList = SortedList()  # trailing sells, activate when price >= a
        self.activate_down: SortedList = SortedList()  # trailing buys, when price <= a
        self.trail_sell = TrailBuckets(SELL)
        self.trail_buy = TrailBuckets(BUY)
        self.up_first = NO_HIGH
        self.down_last = NO_LOW
        self.activate_up_first = NO_HIGH
        self.activate_down_last = NO_LOW
        self.count = 0

    def add_trigger(self, algo: AlgoOrder) -> None:
        trigger = algo.trigger
        if algo.direction == UP:
            self.up.add((trigger, algo.algo_id))
            if trigger < self.up_first:
                self.up_first = trigger
        else:
            self.down.add((trigger, algo.algo_id))
            if trigger > self.down_last:
                self.down_last = trigger

    def remove_trigger(self, algo: AlgoOrder) -> None:
        trigger = algo.trigger
        if algo.direction == UP:
            up = self.up
            up.remove((trigger, algo.algo_id))
            if trigger == self.up_first:
                self.up_first = up[0][0] if up else NO_HIGH
        else:
            down = self.down
            down.remove((trigger, algo.algo_id))
            if trigger == self.down_last:
                self.down_last = down[-1][0] if down else NO_LOW

    def add_waiting(self, algo: AlgoOrder) -> None:
        """A trailing stop waiting for its activation price."""
        key = algo.activation_key
        if algo.side == SELL:
            self.activate_up.add((key, algo.algo_id))
            if key < self.activate_up_first:
                self.activate_up_first = key
        else:
            self.activate_down.add((key, algo.algo_id))
            if key > self.activate_down_last:
                self.activate_down_last = key

    def remove_waiting(self, algo: AlgoOrder) -> None:
        key = algo.activation_key
        if algo.side == SELL:
            waiting = self.activate_up
            waiting.remove((key, algo.algo_id))
            if key == self.activate_up_first:
                self.activate_up_first = waiting[0][0] if waiting else NO_HIGH
        else:
            waiting = self.activate_down
            waiting.remove((key, algo.algo_id))
            if key == self.activate_down_last:
                self.activate_down_last = waiting[-1][0] if waiting else NO_LOW

    def activated(self, price: int) -> list[int]:
        """Take out the trailing stops whose activation `price` reached: sells (lowest
        activation first), then buys (highest first)."""
        out: list[int] = []
        if self.activate_up_first <= price:
            waiting = self.activate_up
            while waiting and waiting[0][0] <= price:
                out.append(waiting.pop(0)[1])
            self.activate_up_first = waiting[0][0] if waiting else NO_HIGH
        if self.activate_down_last >= price:
            waiting = self.activate_down
            while waiting and waiting[-1][0] >= price:
                out.append(waiting.pop()[1])
            self.activate_down_last = waiting[-1][0] if waiting else NO_LOW
        return out

    def reached(self, price: int) -> list[tuple[int, int]]:
        """(trigger, algo id) of every order whose trigger the price has reached; each list is
        looked into only when its nearest trigger is reached (O(1) otherwise)."""
        out: list[tuple[int, int]] = []
        if self.up_first <= price:
            out += self.up.irange(maximum=(price, 1 << 62))
        if self.down_last >= price:
            out += self.down.irange(minimum=(price, -1))
        if self.trail_sell.edge >= price:
            out += self.trail_sell.reached(price)
        if self.trail_buy.edge <= price:
            out += self.trail_buy.reached(price)
        return out
