"""Recorded prices: Binance's public data archive formats (data.binance.vision), read from
files the user already has (nothing is downloaded).

    klines     SYMBOL-INTERVAL-DATE.csv: open_time, open, high, low, close, volume, close_time,
               quote_volume, count, taker_buy_volume, taker_buy_quote_volume, ignore
    aggTrades  SYMBOL-aggTrades-DATE.csv: agg_trade_id, price, quantity, first_trade_id,
               last_trade_id, transact_time, is_buyer_maker (spot files add is_best_match)

With or without the header row the newer files carry; times in ms (or in µs, as the 2025+
spot files: recognised by their size); a .zip as downloaded (its one CSV inside) or the CSV.
The symbol is the file name's first part (`BTCUSDT-1m-2022-09-12.csv` -> BTCUSDT); a folder
gives every such file in it.

The price at a time t: for klines, the close of the last kline closed by t (before the first
close, the first open), so a replay shows each close from the end of its minute; for
aggTrades, the price of the last trade at or before t.

`example_klines` / `example_agg_trades` write the small generated files shipped in
engine/sim/examples/prices (synthetic prices in the real layout, for the tests and for trying
--prices; `python -m engine.sim.recorded` rewrites them).
"""
from __future__ import annotations

import bisect
import csv
import io
import random
import zipfile
from array import array
from dataclasses import dataclass, field
from pathlib import Path

from engine.core import fixed
from engine.core.timeutil import parse_iso_ms

EXAMPLES = Path(__file__).resolve().parent / "examples"
KLINE_HEADER = ["open_time", "open", "high", "low", "close", "volume", "close_time",
                "quote_volume", "count", "taker_buy_volume", "taker_buy_quote_volume", "ignore"]
AGG_HEADER = ["agg_trade_id", "price", "quantity", "first_trade_id", "last_trade_id",
              "transact_time", "is_buyer_maker"]
_MICROS = 10 ** 14  # a time above this many ms (year 5138) is in microseconds


__all__ = ["Series", "RecordedError", "load", "read_file", "read_rows", "symbol_of",
           "example_klines", "example_agg_trades", "EXAMPLES", "EXAMPLE_FILES"]


class RecordedError(ValueError):
    pass


@dataclass
class Series:
    """One symbol's recorded prices: (time ms, price in 1e-8 units), ascending in time."""
    symbol: str
    kind: str  # "klines" or "aggTrades"
    source: str
    times: array = field(default_factory=lambda: array("q"))
    prices: array = field(default_factory=lambda: array("q"))
    rows: int = 0
    closes: list[tuple[int, int]] = field(default_factory=list)  # klines: (close time, close)

    @property
    def first_time(self) -> int:
        return self.times[0]

    @property
    def last_time(self) -> int:
        return self.times[-1]

    def price_at(self, t: int) -> int:
        i = bisect.bisect_right(self.times, t) - 1
        return self.prices[max(i, 0)]

    def add(self, t: int, price: int) -> None:
        if self.times and t < self.times[-1]:
            raise RecordedError(f"{self.source}: row {self.rows}: time goes backwards")
        if self.times and t == self.times[-1]:
            self.prices[-1] = price  # the last at the same ms wins
            return
        self.times.append(t)
        self.prices.append(price)


def symbol_of(path: Path) -> str:
    name = path.name
    sym = name.split("-", 1)[0].split(".", 1)[0].upper()
    if not sym or not all(c.isalnum() or c == "_" for c in sym):
        raise RecordedError(f"{path}: cannot tell the symbol from the file name (expected "
                            "e.g. BTCUSDT-1m-2022-09-12.csv)")
    return sym


def _ms(text: str) -> int:
    t = int(text)
    return t // 1000 if t >= _MICROS else t


def _price(text: str, where: str) -> int:
    try:
        units = fixed.parse(text)
    except fixed.DecimalFormatError as exc:
        raise RecordedError(f"{where}: {exc}") from None
    if units <= 0:
        raise RecordedError(f"{where}: price must be positive, not {text}")
    return units


def read_rows(rows, symbol: str, source: str) -> Series:
    """A Series from CSV rows (lists of strings), klines or aggTrades told by their width."""
    series: Series | None = None
    for n, row in enumerate(rows, start=1):
        if not row or not "".join(row).strip():
            continue
        if not row[0].strip().lstrip("-").isdigit():
            if series is None and n == 1:
                continue  # the header row of the newer files
            raise RecordedError(f"{source}: row {n}: not a number: {row[0]!r}")
        if series is None:
            if len(row) >= 11:
                series = Series(symbol, "klines", source)
            elif len(row) in (7, 8):
                series = Series(symbol, "aggTrades", source)
            else:
                raise RecordedError(f"{source}: row {n}: {len(row)} columns; expected Binance's "
                                    "kline (12) or aggTrades (7 or 8) CSV")
        where = f"{source}: row {n}"
        try:
            if series.kind == "klines":
                if not series.times:
                    series.add(_ms(row[0]), _price(row[1], where))
                close_time, close = _ms(row[6]), _price(row[4], where)
                series.add(close_time, close)
                series.closes.append((close_time, close))
            else:
                series.add(_ms(row[5]), _price(row[1], where))
        except (IndexError, ValueError) as exc:
            if isinstance(exc, RecordedError):
                raise
            raise RecordedError(f"{where}: {exc}") from None
        series.rows += 1
    if series is None or not series.times:
        raise RecordedError(f"{source}: no rows")
    return series


def read_file(path: str | Path) -> Series:
    path = Path(path)
    symbol = symbol_of(path)
    if path.suffix.lower() == ".zip":
        with zipfile.ZipFile(path) as z:
            names = [n for n in z.namelist() if n.lower().endswith(".csv")]
            if len(names) != 1:
                raise RecordedError(f"{path}: expected one CSV inside, found {len(names)}")
            with z.open(names[0]) as f:
                return read_rows(csv.reader(io.TextIOWrapper(f, "ascii")), symbol, str(path))
    with open(path, newline="") as f:
        return read_rows(csv.reader(f), symbol, str(path))


def load(paths: list[str]) -> dict[str, Series]:
    """Every recorded series named by `paths` (files, or folders of .csv / .zip files), by
    symbol; one file per symbol."""
    out: dict[str, Series] = {}
    for p in paths:
        path = Path(p)
        if path.is_dir():
            files = sorted(f for f in path.iterdir() if f.suffix.lower() in (".csv", ".zip"))
            if not files:
                raise RecordedError(f"{path}: no .csv or .zip files")
        elif path.exists():
            files = [path]
        else:
            raise RecordedError(f"{path}: no such file or folder")
        for f in files:
            s = read_file(f)
            if s.symbol in out:
                raise RecordedError(f"{f}: a second file for {s.symbol} (first: "
                                    f"{out[s.symbol].source}); give one file per symbol")
            out[s.symbol] = s
    return out


# -- the generated example files --------------------------------------------------------------
def _dec(units: int) -> str:
    return fixed.fmt(units)


def example_klines(symbol: str = "BTCUSDT", start: str = "2022-09-12T00:00:00Z",
                   minutes: int = 30, price: str = "22000", tick: str = "0.1",
                   seed: int = 20220912) -> str:
    """A kline CSV (1m, with the header row) of a seeded random walk: synthetic, in Binance's
    exact layout."""
    rng = random.Random(seed)
    t0 = parse_iso_ms(start)
    tick_u = fixed.parse(tick)
    p = fixed.parse(price) // tick_u
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(KLINE_HEADER)
    for i in range(minutes):
        o = p
        path = [o]
        for _ in range(6):
            p = max(1, p + int(round(rng.gauss(0, 0.0006) * p)))  # edge-side float walk
            path.append(p)
        c = p
        hi, lo = max(path), min(path)
        vol = rng.randint(50_000, 400_000)  # 0.001 BTC steps
        open_t = t0 + i * 60_000
        quote = vol * c * tick_u // 1000
        w.writerow([open_t, _dec(o * tick_u), _dec(hi * tick_u), _dec(lo * tick_u),
                    _dec(c * tick_u), _dec(vol * 100_000), open_t + 59_999, _dec(quote),
                    rng.randint(500, 4000), _dec(vol * 100_000 // 2), _dec(quote // 2), 0])
    return out.getvalue()


def example_agg_trades(symbol: str = "ETHUSDT", start: str = "2022-09-12T00:00:00Z",
                       seconds: int = 600, price: str = "1700", tick: str = "0.01",
                       seed: int = 20220913) -> str:
    """An aggTrades CSV (with the header row) of a seeded walk, a few trades a second."""
    rng = random.Random(seed)
    t = parse_iso_ms(start)
    end = t + seconds * 1000
    tick_u = fixed.parse(tick)
    p = fixed.parse(price) // tick_u
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(AGG_HEADER)
    agg, first = 1_000_000_000, 2_000_000_000
    while True:
        t += 1 + int(rng.expovariate(1 / 400))  # ~2.5 trades a second
        if t >= end:
            break
        p = max(1, p + int(round(rng.gauss(0, 0.00015) * p)))  # edge-side float walk
        n = rng.randint(1, 5)
        qty = rng.randint(1, 20_000)  # 0.001 ETH steps
        w.writerow([agg, _dec(p * tick_u), _dec(qty * 100_000), first, first + n - 1, t,
                    "true" if rng.random() < 0.5 else "false"])
        agg += 1
        first += n
    return out.getvalue()


EXAMPLE_FILES = {
    "prices/BTCUSDT-1m-generated.csv": example_klines,
    "prices/ETHUSDT-aggTrades-generated.csv": example_agg_trades,
}


def main() -> int:
    """Rewrite the generated example files."""
    for rel, make in EXAMPLE_FILES.items():
        path = EXAMPLES / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(make())
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

