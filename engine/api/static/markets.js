// Markets: every symbol with its mark, index and last price, 24-hour change, funding rate and
// countdown, and open interest. REST once (exchangeInfo, premiumIndex, ticker/24hr,
// openInterest), then live: !markPrice@arr@1s (mark, index, funding rate, next funding time)
// and !ticker@arr (last price, change); open interest again for the symbols that traded.
import { get } from "./api.js";
import { fmt, parse } from "./dec.js";
import { countdown, el, notice, perFrame, setText } from "./util.js";

const OI_EVERY_MS = 15000;
const COINM_EVERY_MS = 5000;

export class Markets {
  constructor(stream, clock, root) {
    this.stream = stream;
    this.clock = clock;
    this.root = root;
    this.info = new Map();  // symbol -> exchangeInfo row (+ "product": "USD-M" | "COIN-M")
    this.data = new Map();  // symbol -> {mark, index, last, change, funding, next, oi}
    this.rows = new Map();  // symbol -> {tr, cells}
    this.watchers = new Set();  // fn(symbol) after a symbol's figures changed
    this.traded = new Set();
    this.render = perFrame(() => this.paint());
    this.dirty = new Set();
  }

  async init() {
    const [info, premium, tickers] = await Promise.all([
      get("/fapi/v1/exchangeInfo"), get("/fapi/v1/premiumIndex"), get("/fapi/v1/ticker/24hr")]);
    for (const s of info.symbols) this.info.set(s.symbol, { ...s, product: "USD-M" });
    for (const p of premium) this.merge(p.symbol, {
      mark: p.markPrice, index: p.indexPrice, funding: p.lastFundingRate,
      next: p.nextFundingTime });
    const volume = new Map();
    for (const t of tickers) {
      this.merge(t.symbol, { last: t.lastPrice, change: t.priceChangePercent });
      volume.set(t.symbol, parse(t.quoteVolume));
    }
    await this.initCoinM(volume);
    const order = [...this.info.keys()].sort((a, b) => {
      const va = volume.get(a) || 0n;
      const vb = volume.get(b) || 0n;
      return va === vb ? (a < b ? -1 : 1) : (va > vb ? -1 : 1);
    });
    this.build(order);
    this.stream.on("!markPrice@arr@1s", (rows) => {
      for (const r of rows) this.merge(r.s, { mark: r.p, index: r.i, funding: r.r, next: r.T });
    });
    this.stream.on("!ticker@arr", (rows) => {
      for (const r of rows) {
        this.merge(r.s, { last: r.c, change: r.P });
        this.traded.add(r.s);
      }
    });
    this.openInterest([...this.info.keys()].filter((s) => this.info.get(s).product === "USD-M"));
    setInterval(() => {
      const traded = [...this.traded];
      this.traded.clear();
      this.openInterest(traded);
    }, OI_EVERY_MS);
    setInterval(() => this.paintCountdowns(), 1000);
  }

  // COIN-M symbols, when the venue's /dapi lists any: polled (their streams are /dapi's).
  async initCoinM(volume) {
    let info;
    try {
      info = await get("/dapi/v1/exchangeInfo");
    } catch (err) {
      return;
    }
    if (!info.symbols || !info.symbols.length) return;
    for (const s of info.symbols) this.info.set(s.symbol, { ...s, product: "COIN-M" });
    const poll = async () => {
      try {
        const [premium, tickers] = await Promise.all([
          get("/dapi/v1/premiumIndex"), get("/dapi/v1/ticker/24hr")]);
        for (const p of premium) this.merge(p.symbol, {
          mark: p.markPrice, index: p.indexPrice, funding: p.lastFundingRate,
          next: p.nextFundingTime });
        for (const t of tickers) {
          this.merge(t.symbol, { last: t.lastPrice, change: t.priceChangePercent });
          if (volume && t.baseVolume) volume.set(t.symbol, parse(t.baseVolume));
        }
        for (const s of info.symbols) {
          const oi = await get("/dapi/v1/openInterest", { symbol: s.symbol });
          this.merge(s.symbol, { oi: oi.openInterest });
        }
      } catch (err) {
        notice(`COIN-M markets: ${err.message}`);
      }
    };
    await poll();
    volume = null;
    setInterval(poll, COINM_EVERY_MS);
  }

  async openInterest(symbols) {
    const queue = [...symbols];
    const worker = async () => {
      while (queue.length) {
        const symbol = queue.shift();
        try {
          const r = await get("/fapi/v1/openInterest", { symbol });
          this.merge(symbol, { oi: r.openInterest });
        } catch (err) {
          notice(`open interest ${symbol}: ${err.message}`);
          return;
        }
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
  }

  merge(symbol, figures) {
    if (!this.info.has(symbol)) return;
    const d = this.data.get(symbol) || {};
    Object.assign(d, figures);
    this.data.set(symbol, d);
    this.dirty.add(symbol);
    this.render();
    for (const fn of this.watchers) fn(symbol, d);
  }

  watch(fn) {
    this.watchers.add(fn);
    return () => this.watchers.delete(fn);
  }

  build(order) {
    const body = this.root.querySelector("tbody");
    body.replaceChildren();
    for (const symbol of order) {
      const info = this.info.get(symbol);
      const cells = {};
      const tr = el("tr", { "data-symbol": symbol },
        el("td", {}, el("a", { href: `#/symbol/${symbol}`, text: symbol })),
        el("td", { class: "dim", text: info.product }));
      for (const k of ["mark", "index", "last", "change", "funding", "countdown", "oi"]) {
        cells[k] = el("td", { class: `num ${k}`, "data-field": k });
        tr.append(cells[k]);
      }
      body.append(tr);
      this.rows.set(symbol, { tr, cells });
      this.dirty.add(symbol);
    }
    setText(this.root.querySelector(".count"), `${order.length} symbols`);
    this.paint();
  }

  paint() {
    for (const symbol of this.dirty) {
      const row = this.rows.get(symbol);
      const d = this.data.get(symbol);
      if (!row || !d) continue;
      const c = row.cells;
      setText(c.mark, d.mark);
      row.tr.classList.toggle("idle", !d.mark || d.mark === "0");  // no mark yet: dimmed
      setText(c.index, d.index);
      setText(c.last, d.last);
      if (d.change !== undefined) {
        setText(c.change, `${d.change} %`);
        c.change.classList.toggle("up", parse(d.change) > 0n);
        c.change.classList.toggle("down", parse(d.change) < 0n);
      }
      if (d.funding !== undefined) setText(c.funding, `${fmt(parse(d.funding) * 100n)} %`);
      setText(c.oi, d.oi);
      this.paintCountdown(symbol);
    }
    this.dirty.clear();
  }

  paintCountdown(symbol) {
    const row = this.rows.get(symbol);
    const d = this.data.get(symbol);
    if (!row || !d) return;
    setText(row.cells.countdown, d.next ? countdown(d.next - this.clock.now()) : "");
  }

  paintCountdowns() {
    if (this.root.hidden) return;
    for (const symbol of this.rows.keys()) this.paintCountdown(symbol);
  }
}
