"""The server's clocks: what time the sequencing loop stamps on each command.

    WallClock   Unix ms from the system clock (the default)
    SimClock    simulated time: `start` + (wall time elapsed since the server started) x
                `speed`, so with --speed 60 eight hours of funding pass in eight minutes and
                the ETHUSDT table switch of 2022-09-13T07:00:00Z is reached on purpose

Both never go backwards (the core's time only grows; after a restart neither starts before
the last recorded command) and both are callables returning int ms, which is all the
SequencingLoop needs. `now()` is the time an edge reports to a client (the native `time` query,
the HTTP API's GET /fapi/v1/time): the same clock the commands are stamped with, so a client
sees the venue's time. `wall_ms()` is the real time, for what must stay real: a signed HTTP
request's `timestamp` and `recvWindow` are checked against the wall clock, whatever the venue's
clock says, since the client signs with its own wall clock.

The core never reads either: each command carries its time in the log, so a replay needs no
clock at all. The clock a log was started with is recorded in its header (`describe()`).
"""
from __future__ import annotations

import time
from decimal import Decimal
from fractions import Fraction

from engine.core.timeutil import iso, parse_iso_ms

MAX_SPEED = 1_000_000


def wall_ms() -> int:
    """The real time in Unix ms (signed requests' timestamps are checked against this)."""
    return time.time_ns() // 1_000_000


class WallClock:
    """Unix ms from the system clock, never going backwards (the core's time only grows)."""
    mode = "wall"

    def __init__(self, start: int = 0) -> None:
        self.last = start

    def __call__(self) -> int:
        now = max(time.time_ns() // 1_000_000, self.last)
        self.last = now
        return now

    def now(self) -> int:
        """The venue's time as reported to clients."""
        return self()

    def describe(self) -> dict:
        return {"mode": "wall"}


class SimClock:
    """Simulated ms: `origin` + monotonic wall time elapsed since construction x `speed`.

    `origin` is `start`, or the last recorded command's time if the log is already past it
    (a restarted venue carries on from where it stopped rather than stall until the simulated
    time catches up). Exact: the elapsed nanoseconds are scaled by the speed as a fraction."""
    mode = "sim"

    def __init__(self, start: int, speed: Fraction | int | str = 1, floor: int = 0,
                 monotonic_ns=time.monotonic_ns) -> None:
        self.speed = parse_speed(speed)
        self.start = start
        self.origin = max(start, floor)
        self._monotonic_ns = monotonic_ns
        self._t0 = monotonic_ns()
        self._num, self._den = self.speed.numerator, self.speed.denominator * 1_000_000
        self.last = self.origin

    def __call__(self) -> int:
        elapsed = self._monotonic_ns() - self._t0
        now = max(self.origin + elapsed * self._num // self._den, self.last)
        self.last = now
        return now

    def now(self) -> int:
        return self()

    def describe(self) -> dict:
        return {"mode": "sim", "speed": _speed_text(self.speed), "start": iso(self.start),
                "origin": iso(self.origin)}


def parse_speed(value: Fraction | int | str) -> Fraction:
    """'60', '0.5', '3600' -> an exact Fraction in (0, MAX_SPEED]."""
    try:
        speed = Fraction(value) if not isinstance(value, Fraction) else value
    except (ValueError, ZeroDivisionError, TypeError):
        raise ValueError(f"--speed: not a number: {value!r}") from None
    if not 0 < speed <= MAX_SPEED:
        raise ValueError(f"--speed must be above 0 and at most {MAX_SPEED:,}, not {value}")
    return speed


def _speed_text(speed: Fraction) -> str:
    """Exact: '60', '0.5', or '1/3' (what parse_speed reads back)."""
    if speed.denominator == 1:
        return str(speed.numerator)
    d = speed.denominator
    for p in (2, 5):
        while d % p == 0:
            d //= p
    if d == 1:  # a finite decimal
        return format(Decimal(speed.numerator) / Decimal(speed.denominator), "f")
    return f"{speed.numerator}/{speed.denominator}"


def make_clock(mode: str, speed: str = "1", start: str | None = None,
               floor: int = 0) -> WallClock | SimClock:
    """The clock of `--clock wall|sim --speed N --start ISO`; `floor` is the log's last time."""
    if mode == "wall":
        if start is not None or parse_speed(speed) != 1:
            raise ValueError("--speed and --start need --clock sim")
        return WallClock(floor)
    if mode != "sim":
        raise ValueError(f"--clock must be wall or sim, not {mode!r}")
    start_ms = parse_iso_ms(start) if start is not None else wall_ms()
    return SimClock(start_ms, speed, floor)


def describe_line(clock) -> str:
    """For the start line: 'wall' or 'sim x60 from 2022-09-12T00:00:00Z'."""
    d = clock.describe()
    if d["mode"] != "sim":
        return "wall"
    text = f"sim x{d['speed']} from {d['origin']}"
    return text + (f" (log already past --start {d['start']})" if d["origin"] != d["start"]
                   else "")


__all__ = ["WallClock", "SimClock", "make_clock", "parse_speed", "wall_ms", "describe_line",
           "MAX_SPEED"]
