"""The contract catalogue: symbols, filters and effective-dated leverage brackets, read from
catalogue.json. The maintenance amount `cum` is derived here, never stored:

    cum(1) = 0,  cum(n) = cum(n-1) + floor(n) x (MMR(n) - MMR(n-1))

which makes MM = notional x MMR(tier) - cum(tier) continuous at every tier boundary.
All values are ints of 1e-8 units (engine.core.fixed); times are ms.

Funding caps are effective-dated too: a symbol's `fundingCap` (an absolute cap; null: a multiple
of the tier-1 MMR of the bracket table in force, `fundingCapMultiplier`, 0.75 by default) may be
followed by `fundingCapSchedule`, a list of {"effective": ISO time, "cap": decimal or null,
"multiplier": decimal} (SymbolSpec.funding_cap_at).

COIN-M (inverse) symbols carry `contractSize` (USD per contract) and `pair` (their index, e.g.
"BTCUSD"); their quantities are whole contracts and their bracket tables are in the coin
(engine.core.inverse). `collateral` holds the Multi-Assets collateral ratios, effective-dated
like the tables (Collateral).
"""
from __future__ import annotations

import bisect
import json
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path

from engine.core import fixed
from engine.core.timeutil import parse_iso_ms


class CatalogueError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Tier:
    bracket: int  # 1-based
    floor: int  # notional, exclusive lower bound ("floor < notional <= cap")
    cap: int
    max_leverage: int
    mmr: int  # maintenance margin rate
    cum: int  # maintenance amount


@dataclass(frozen=True)
class BracketTable:
    name: str
    tiers: tuple[Tier, ...]
    source: str = ""
    assumed: bool = False
    note: str = ""

    @classmethod
    def from_rows(cls, name: str, rows: list[tuple[int, int, int, int]], **meta) -> "BracketTable":
        """rows: (floor, cap, max_leverage, mmr); cum follows the recurrence."""
        tiers: list[Tier] = []
        cum = 0
        for n, (floor, cap, lev, mmr) in enumerate(rows, start=1):
            if n == 1:
                if floor != 0:
                    raise CatalogueError(f"table {name}: first floor must be 0")
            else:
                prev = tiers[-1]
                if floor != prev.cap:
                    raise CatalogueError(f"table {name}: tier {n} floor != tier {n - 1} cap")
                if lev > prev.max_leverage or mmr < prev.mmr:
                    raise CatalogueError(f"table {name}: tier {n} leverage up or MMR down")
                cum += fixed.mul_floor(floor, mmr - prev.mmr)
            if cap <= floor or lev < 1:
                raise CatalogueError(f"table {name}: tier {n} bad cap or leverage")
            tiers.append(Tier(n, floor, cap, lev, mmr, cum))
        return cls(name, tuple(tiers), **meta)

    @cached_property
    def _caps(self) -> list[int]:
        return [t.cap for t in self.tiers]

    def tier_for(self, notional: int) -> Tier | None:
        """The tier of a notional (>= 0); a notional equal to a cap belongs to the lower tier.
        None beyond the last cap."""
        i = bisect.bisect_left(self._caps, notional)
        return self.tiers[i] if i < len(self.tiers) else None

    def maint_margin(self, notional: int) -> int:
        """MM = notional x MMR - cum, rounded up (the venue's side). Beyond the last cap the last
        tier applies (such positions can only arise from a table change)."""
        tier = self.tier_for(notional) or self.tiers[-1]
        return -(-(notional * tier.mmr) // fixed.SCALE) - tier.cum

    @property
    def max_leverage(self) -> int:
        return self.tiers[0].max_leverage

    def max_notional(self, leverage: int) -> int:
        """At leverage L, the largest position notional: the cap of the highest tier whose max
        leverage >= L. 0 when L is above tier 1's max."""
        best = 0
        for t in self.tiers:
            if t.max_leverage >= leverage:
                best = t.cap
        return best


@dataclass(frozen=True)
class SymbolSpec:
    symbol: str
    base_asset: str
    quote_asset: str
    margin_asset: str
    contract_type: str
    underlying_type: str
    tick_size: int
    step_size: int
    min_qty: int
    max_qty: int
    market_max_qty: int
    min_price: int
    max_price: int
    min_notional: int
    multiplier_up: int
    multiplier_down: int
    maker_fee: int
    taker_fee: int
    liquidation_fee: int
    max_num_orders: int
    funding_cap: int | None  # None: funding_cap_multiplier x tier-1 MMR
    schedule: tuple[tuple[int, BracketTable], ...]  # (effective ms, table), ascending
    assumed: tuple[str, ...] = ()
    _effective: list[int] = field(default_factory=list, repr=False)
    # effective-dated changes of the funding cap: (effective ms, cap or None, multiplier),
    # ascending; `funding_cap` and `funding_cap_multiplier` apply before the first of them
    funding_caps: tuple[tuple[int, int | None, int], ...] = ()
    funding_cap_multiplier: int = 75_000_000  # 0.75 (1e-8)
    max_num_algo_orders: int = 100  # open conditional orders per account and symbol
    trigger_protect: int = 5_000_000  # priceProtect: |mark - last| / mark at most 5 % (1e-8)
    contract_size: int = 0  # COIN-M: USD per contract (1e-8 units); 0: a linear (USD-M) contract
    pair: str = ""  # COIN-M: the index pair ("BTCUSD"); "" for USD-M contracts

    @property
    def inverse(self) -> bool:
        """A COIN-M contract: quantity in contracts of `contract_size` USD, margin in the coin."""
        return self.contract_size > 0

    def __post_init__(self) -> None:
        self._effective.extend(t for t, _ in self.schedule)

    def table_at(self, ms: int) -> BracketTable:
        i = bisect.bisect_right(self._effective, ms) - 1
        return self.schedule[max(i, 0)][1]

    def window(self, ms: int) -> tuple[BracketTable, int, int | None]:
        """(table in force at ms, since when, until when: None if no later switch)."""
        i = bisect.bisect_right(self._effective, ms) - 1
        since = self._effective[i] if i >= 0 else -(1 << 62)
        until = self._effective[i + 1] if i + 1 < len(self._effective) else None
        return self.schedule[max(i, 0)][1], since, until

    def funding_cap_at(self, ms: int) -> tuple[int | None, int]:
        """(the symbol's absolute funding cap in force at ms or None, the multiplier of the
        tier-1 MMR that applies when there is none)."""
        cap, multiplier = self.funding_cap, self.funding_cap_multiplier
        for effective, c, m in self.funding_caps:
            if effective > ms:
                break
            cap, multiplier = c, m
        return cap, multiplier


@dataclass(frozen=True)
class CollateralAsset:
    """One asset's Multi-Assets valuation: a positive balance counts at index x `ratio`
    (Binance's collateral value ratio, 1 - bidBuffer), a negative one at index x (1 +
    `ask_buffer`). Both 1e-8 units."""
    asset: str
    ratio: int
    ask_buffer: int = 0


@dataclass(frozen=True)
class CollateralTable:
    effective: int  # ms
    source: str
    assets: dict[str, CollateralAsset]


@dataclass(frozen=True)
class Collateral:
    """The collateral ratios of Multi-Assets mode, effective-dated; an asset not in the table
    in force is no collateral (ratio 0). Stablecoins count at 1 USD until an index is fed."""
    schedule: tuple[CollateralTable, ...] = ()
    stablecoins: frozenset[str] = frozenset()
    note: str = ""

    def at(self, ms: int) -> CollateralTable | None:
        """The table in force at ms (the first one before its date: like the bracket tables)."""
        table = self.schedule[0] if self.schedule else None
        for t in self.schedule:
            if t.effective > ms:
                break
            table = t
        return table

    def next_change_after(self, ms: int) -> int | None:
        for t in self.schedule:
            if t.effective > ms:
                return t.effective
        return None


@dataclass(frozen=True)
class Catalogue:
    version: str
    symbols: dict[str, SymbolSpec]
    tables: dict[str, BracketTable]
    # leveraged tokens (engine.core.token_specs.TokenSpec by name): tokens.json unless the document
    # has its own "leveragedTokens"; tokens whose underlying is not a symbol here are left out
    tokens: dict = field(default_factory=dict)
    collateral: Collateral = field(default_factory=Collateral)

    def pair_symbols(self, pair: str) -> list[str]:
        """The COIN-M symbols whose index is `pair` ("BTCUSD" -> ["BTCUSD_PERP"])."""
        return sorted(s for s, spec in self.symbols.items() if spec.pair == pair)

    def spec(self, symbol: str) -> SymbolSpec:
        try:
            return self.symbols[symbol]
        except KeyError:
            raise CatalogueError(f"unknown symbol: {symbol}") from None


DEFAULT_PATH = "catalogue.json"

_DEFAULTS = {
    "tickSize": "0.0001", "stepSize": "0.1", "minQty": "0.1", "maxQty": "10000000",
    "marketMaxQty": "1000000", "minPrice": None, "maxPrice": "10000000", "minNotional": "5",
    "multiplierUp": "1.15", "multiplierDown": "0.85", "makerFee": "0.0002", "takerFee": "0.0005",
    "liquidationFee": "0.0125", "maxNumOrders": 200, "maxNumAlgoOrders": 100,
    "triggerProtect": "0.05", "fundingCapMultiplier": "0.75",
}


def _decimals(units: int) -> int:
    d = 0
    while units % fixed.SCALE != 0:
        units *= 10
        d += 1
    return d


def load(path: str | Path | None = None, overrides: dict | None = None) -> Catalogue:
    """Read the catalogue (the packaged one by default). `overrides` is a dict of the same shape
    merged over it (tables by name, symbols by symbol): the what-if replays use this."""
    if path is None:
        text = resources.files("engine.core").joinpath(DEFAULT_PATH).read_text()
    else:
        text = Path(path).read_text()
    return from_dict(json.loads(text), overrides)


def from_dict(doc: dict, overrides: dict | None = None) -> Catalogue:
    defaults = {**_DEFAULTS, **doc.get("defaults", {})}
    table_docs = dict(doc["tables"])
    symbol_docs = {s["symbol"]: s for s in doc["symbols"]}
    if overrides:
        table_docs.update(overrides.get("tables", {}))
        for s in overrides.get("symbols", []):
            symbol_docs[s["symbol"]] = {**symbol_docs.get(s["symbol"], {}), **s}
    tables = {}
    for name, t in table_docs.items():
        rows = [(fixed.parse(r["floor"]), fixed.parse(r["cap"]), int(r["maxLeverage"]),
                 fixed.parse(r["mmr"])) for r in t["tiers"]]
        tables[name] = BracketTable.from_rows(name, rows, source=t.get("source", ""),
                                              assumed=bool(t.get("assumed", False)),
                                              note=t.get("note", ""))
    symbols = {}
    for name, s in symbol_docs.items():
        def val(key: str, _s=s):
            return _s.get(key, defaults.get(key))
        tick = fixed.parse(val("tickSize"))
        step = fixed.parse(val("stepSize"))
        if _decimals(tick) + _decimals(step) > fixed.DECIMALS:
            raise CatalogueError(f"{name}: tick and step decimals exceed {fixed.DECIMALS}")
        contract_size = fixed.parse(s["contractSize"]) if s.get("contractSize") else 0
        if contract_size and (step % fixed.SCALE or fixed.parse(val("minQty")) % fixed.SCALE):
            raise CatalogueError(f"{name}: a COIN-M quantity is a whole number of contracts")
        schedule = []
        for b in s["brackets"]:
            if b["table"] not in tables:
                raise CatalogueError(f"{name}: unknown bracket table {b['table']}")
            schedule.append((parse_iso_ms(b["effective"]), tables[b["table"]]))
        schedule.sort(key=lambda x: x[0])
        cap = s.get("fundingCap")
        symbols[name] = SymbolSpec(
            symbol=name,
            base_asset=s.get("baseAsset", name),
            quote_asset=s.get("quoteAsset", "USDT"),
            margin_asset=s.get("marginAsset", s.get("quoteAsset", "USDT")),
            contract_type=s.get("contractType", "PERPETUAL"),
            underlying_type=s.get("underlyingType", "COIN"),
            tick_size=tick, step_size=step,
            min_qty=fixed.parse(val("minQty")), max_qty=fixed.parse(val("maxQty")),
            market_max_qty=fixed.parse(val("marketMaxQty")),
            min_price=fixed.parse(val("minPrice")) if val("minPrice") else tick,
            max_price=fixed.parse(val("maxPrice")),
            min_notional=fixed.parse(val("minNotional")),
            multiplier_up=fixed.parse(val("multiplierUp")),
            multiplier_down=fixed.parse(val("multiplierDown")),
            maker_fee=fixed.parse(val("makerFee")), taker_fee=fixed.parse(val("takerFee")),
            liquidation_fee=fixed.parse(val("liquidationFee")),
            max_num_orders=int(val("maxNumOrders")),
            funding_cap=fixed.parse(cap) if cap is not None else None,
            funding_cap_multiplier=fixed.parse(val("fundingCapMultiplier")),
            max_num_algo_orders=int(val("maxNumAlgoOrders")),
            trigger_protect=fixed.parse(val("triggerProtect")),
            schedule=tuple(schedule),
            contract_size=contract_size,
            pair=s.get("pair", ""),
            funding_caps=tuple(sorted(
                ((parse_iso_ms(c["effective"]),
                  fixed.parse(c["cap"]) if c.get("cap") is not None else None,
                  fixed.parse(c.get("multiplier") or val("fundingCapMultiplier")))
                 for c in s.get("fundingCapSchedule", ())), key=lambda c: c[0])),
            # assumed: the symbol's own list plus every assumed default it inherits
            assumed=tuple(dict.fromkeys(list(s.get("assumed", ())) + [
                k for k in defaults.get("assumed", ()) if k not in s])),
        )
    from engine.core import token_specs as tokens_mod  # tokens.json sits next to catalogue.json
    token_doc = doc.get("leveragedTokens")
    token_overrides = overrides if overrides and ("tokens" in overrides or
                                                  "tokenDefaults" in overrides) else None
    if token_doc is None:
        tokens = tokens_mod.load(symbols=symbols, overrides=token_overrides)
    else:
        tokens = tokens_mod.from_doc(token_doc, symbols, token_overrides)
    return Catalogue(version=doc.get("version", "unversioned"), symbols=symbols, tables=tables,
                     tokens=tokens,
                     collateral=collateral_from_doc(doc.get("collateral"),
                                                    (overrides or {}).get("collateral")))


def collateral_from_doc(doc: dict | None, override: dict | None = None) -> Collateral:
    """The catalogue's "collateral" section. An override (a what-if file's "collateral") may
    replace the whole "schedule" and/or set "assets" ({"BTC": {"ratio": "0.85"}}) over every
    table of the schedule."""
    doc = dict(doc or {})
    override = override or {}
    if "schedule" in override:
        doc["schedule"] = override["schedule"]
    if "stablecoins" in override:
        doc["stablecoins"] = override["stablecoins"]
    changed = override.get("assets", {})
    tables = []
    for entry in doc.get("schedule", ()):
        rows = {**entry.get("assets", {})}
        for asset, row in changed.items():
            rows[asset] = {**rows.get(asset, {}), **row}
        assets = {}
        for asset, row in sorted(rows.items()):
            ratio = fixed.parse(row["ratio"])
            ask = fixed.parse(row.get("askBuffer", "0"))
            if not 0 <= ratio <= fixed.SCALE or ask < 0:
                raise CatalogueError(f"collateral {asset}: ratio must be 0..1, askBuffer >= 0")
            assets[asset] = CollateralAsset(asset, ratio, ask)
        tables.append(CollateralTable(parse_iso_ms(entry["effective"]), entry.get("source", ""),
                                      assets))
    tables.sort(key=lambda t: t.effective)
    return Collateral(tuple(tables), frozenset(doc.get("stablecoins", ())), doc.get("note", ""))
