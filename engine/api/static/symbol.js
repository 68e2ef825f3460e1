// One symbol: candles, a depth chart and the order book, recent trades and liquidations, all
// live over the WebSocket streams. The order book is kept by Binance's rules from a REST
// snapshot and the diff stream (drop diffs with u < lastUpdateId; start where U <= lastUpdateId
// <= u or pu == lastUpdateId; then every pu must equal the previous u, or start again).
import { get } from "./api.js";
import { add, fmt, parse, toFloat } from "./dec.js";
import { countdown, el, hms, notice, perFrame, setText } from "./util.js";

const BOOK_LEVELS = 20;
const KEEP_ROWS = 50;
const INTERVALS = ["1m", "5m", "15m", "1h", "4h", "1d"];

// -- the local order book -----------------------------------------------------------------------
class LocalBook {
  constructor(symbol, stream, onChange) {
    this.symbol = symbol;
    this.stream = stream;
    this.onChange = onChange;
    this.bids = new Map();  // price text -> {p, q, ps, qs} (p, q: BigInt 1e-8 units)
    this.asks = new Map();
    this.lastUpdateId = 0;
    this.prevU = null;
    this.ready = false;
    this.buffer = [];
    this.closed = false;
    this.resyncs = 0;
    const name = `${symbol.toLowerCase()}@depth@100ms`;
    this.unsubscribe = [
      stream.on(name, (d) => this.onDiff(d)),
      stream.onOpen(() => this.resync()),
    ];
    this.resync();
  }

  close() {
    this.closed = true;
    for (const off of this.unsubscribe) off();
  }

  async resync() {
    if (this.closed || this.syncing) return;
    this.syncing = true;
    this.ready = false;
    this.prevU = null;
    try {
      if (this.resyncs++ > 0) await new Promise((r) => setTimeout(r, 250));
      const snap = await get("/fapi/v1/depth", { symbol: this.symbol, limit: 1000 });
      if (this.closed) return;
      this.bids = levels(snap.bids);
      this.asks = levels(snap.asks);
      this.lastUpdateId = snap.lastUpdateId;
      this.ready = true;
      const buffered = this.buffer;
      this.buffer = [];
      this.syncing = false;
      for (const d of buffered) this.onDiff(d);
      this.onChange();
    } catch (err) {
      notice(`depth ${this.symbol}: ${err.message}`);
      this.syncing = false;
      setTimeout(() => this.resync(), 2000);
    } finally {
      this.syncing = false;
    }
  }

  onDiff(d) {
    if (this.closed) return;
    if (!this.ready) {
      this.buffer.push(d);
      if (this.buffer.length > 1000) this.buffer.shift();
      return;
    }
    if (this.prevU === null) {
      if (d.u < this.lastUpdateId) return;  // already in the snapshot
      if (!(d.U <= this.lastUpdateId && this.lastUpdateId <= d.u) && d.pu !== this.lastUpdateId) {
        this.resync();
        return;
      }
    } else if (d.pu !== this.prevU) {
      this.resync();  // a diff was missed
      return;
    }
    for (const [ps, qs] of d.b) setLevel(this.bids, ps, qs);
    for (const [ps, qs] of d.a) setLevel(this.asks, ps, qs);
    this.prevU = d.u;
    this.lastUpdateId = d.u;
    this.onChange();
  }

  sorted() {
    const bids = [...this.bids.values()].sort((x, y) => (x.p > y.p ? -1 : x.p < y.p ? 1 : 0));
    const asks = [...this.asks.values()].sort((x, y) => (x.p < y.p ? -1 : x.p > y.p ? 1 : 0));
    return { bids, asks };
  }
}

function levels(rows) {
  const m = new Map();
  for (const [ps, qs] of rows) setLevel(m, ps, qs);
  return m;
}

function setLevel(map, ps, qs) {
  const q = parse(qs);
  if (q === 0n) map.delete(ps);
  else map.set(ps, { p: parse(ps), q, ps, qs });
}

// -- the view -------------------------------------------------------------------------------------
export class SymbolView {
  constructor(stream, markets, root) {
    this.stream = stream;
    this.markets = markets;
    this.root = root;
    this.symbol = null;
    this.offs = [];
    this.book = null;
    this.interval = "1m";
    this.candles = new Map();  // open time (s) -> the API's row (strings)
    this.paintBook = perFrame(() => this.drawBook());
    this.markets.watch((symbol) => {
      if (symbol === this.symbol) this.paintHeader();
    });
    setInterval(() => {
      if (this.symbol && !this.root.hidden) this.paintHeader();
    }, 1000);
    this.buildChrome();
  }

  buildChrome() {
    const select = this.root.querySelector("select.symbols");
    for (const s of this.markets.info.keys()) {
      if (this.markets.info.get(s).product === "USD-M") select.append(el("option", { value: s, text: s }));
    }
    select.addEventListener("change", () => {
      location.hash = `#/symbol/${select.value}`;
    });
    const intervals = this.root.querySelector(".intervals");
    for (const i of INTERVALS) {
      intervals.append(el("button", {
        type: "button", "data-interval": i, text: i,
        onclick: () => this.setInterval(i) }));
    }
    const container = this.root.querySelector(".candles");
    const LWC = globalThis.LightweightCharts;
    this.chart = LWC.createChart(container, {
      autoSize: true,
      layout: { background: { color: "#12151c" }, textColor: "#c7ccd6" },
      grid: { vertLines: { color: "#1e2330" }, horzLines: { color: "#1e2330" } },
      timeScale: { timeVisible: true, secondsVisible: false },
      crosshair: { mode: 0 },
    });
    this.series = this.chart.addSeries(LWC.CandlestickSeries, {
      upColor: "#26a69a", downColor: "#ef5350", borderVisible: false,
      wickUpColor: "#26a69a", wickDownColor: "#ef5350" });
    this.chart.subscribeCrosshairMove((p) => this.paintLegend(p && p.time));
  }

  show(symbol) {
    if (symbol === this.symbol) return;
    this.leave();
    if (!this.markets.info.has(symbol)) {
      notice(`unknown symbol ${symbol}`);
      return;
    }
    this.symbol = symbol;
    const info = this.markets.info.get(symbol);
    this.root.querySelector("select.symbols").value = symbol;
    this.root.setAttribute("data-symbol", symbol);
    const tick = info.filters.find((f) => f.filterType === "PRICE_FILTER").tickSize;
    this.series.applyOptions({
      priceFormat: { type: "price", precision: info.pricePrecision, minMove: Number(tick) } });
    const low = symbol.toLowerCase();
    this.trades = this.root.querySelector(".trades tbody");
    this.liqs = this.root.querySelector(".liquidations tbody");
    this.trades.replaceChildren();
    this.liqs.replaceChildren();
    this.book = new LocalBook(symbol, this.stream, this.paintBook);
    this.offs.push(() => this.book.close());
    this.offs.push(this.stream.on(`${low}@trade`, (t) => {
      this.addTrade(t.t, t.T, t.p, t.q, t.m);
      this.markets.merge(symbol, { last: t.p });  // at once, not at the next ticker
      if (!this.oiTimer) {  // open interest again soon after trades (at most every 2 s)
        this.oiTimer = setTimeout(() => {
          this.oiTimer = null;
          this.markets.openInterest([symbol]);
        }, 2000);
      }
    }));
    this.offs.push(this.stream.on(`${low}@forceOrder`, (f) => this.addLiquidation(f.o)));
    this.loadTrades(symbol);
    this.setInterval(this.interval, true);
    this.paintHeader();
  }

  leave() {
    for (const off of this.offs) off();
    this.offs = [];
    if (this.klineOff) this.klineOff();
    this.klineOff = null;
    this.symbol = null;
  }

  paintHeader() {
    const d = this.markets.data.get(this.symbol) || {};
    const h = this.root.querySelector(".figures");
    setText(h.querySelector(".last"), d.last);
    setText(h.querySelector(".mark"), d.mark);
    setText(h.querySelector(".index"), d.index);
    setText(h.querySelector(".change"), d.change !== undefined ? `${d.change} %` : "");
    setText(h.querySelector(".funding"),
            d.funding !== undefined ? `${fmt(parse(d.funding) * 100n)} %` : "");
    setText(h.querySelector(".countdown"),
            d.next ? countdown(d.next - this.markets.clock.now()) : "");
    setText(h.querySelector(".oi"), d.oi);
  }

  // -- candles ----------------------------------------------------------------------------------
  async setInterval(interval, force = false) {
    if (interval === this.interval && !force) return;
    this.interval = interval;
    for (const b of this.root.querySelectorAll(".intervals button")) {
      b.classList.toggle("active", b.dataset.interval === interval);
    }
    if (this.klineOff) this.klineOff();
    const symbol = this.symbol;
    this.candles = new Map();
    this.series.setData([]);
    this.klineOff = this.stream.on(`${symbol.toLowerCase()}@kline_${interval}`, (m) => {
      if (this.symbol === symbol && this.interval === interval) this.addCandle(m.k);
    });
    try {
      const rows = await get("/fapi/v1/klines", { symbol, interval, limit: 500 });
      if (this.symbol !== symbol || this.interval !== interval) return;
      for (const r of rows) this.candles.set(r[0] / 1000, { o: r[1], h: r[2], l: r[3], c: r[4], v: r[5] });
      this.series.setData(rows.map((r) => ({
        time: r[0] / 1000, open: Number(r[1]), high: Number(r[2]), low: Number(r[3]),
        close: Number(r[4]) })));
      this.chart.timeScale().scrollToRealTime();
      this.paintLegend(null);
    } catch (err) {
      notice(`klines ${symbol}: ${err.message}`);
    }
  }

  addCandle(k) {
    const time = k.t / 1000;
    const times = [...this.candles.keys()];
    const lastTime = times.length ? times[times.length - 1] : 0;
    if (time < lastTime) return;  // older than the chart's last bar
    this.candles.set(time, { o: k.o, h: k.h, l: k.l, c: k.c, v: k.v });
    this.series.update({ time, open: Number(k.o), high: Number(k.h), low: Number(k.l),
                         close: Number(k.c) });
    this.paintLegend(null);
  }

  paintLegend(time) {
    const legend = this.root.querySelector(".legend");
    let row = time !== undefined && time !== null ? this.candles.get(time) : null;
    if (!row && this.candles.size) row = [...this.candles.values()].pop();
    setText(legend, row ? `O ${row.o}  H ${row.h}  L ${row.l}  C ${row.c}  V ${row.v}` : "no trades yet");
  }

  // -- book and depth -----------------------------------------------------------------------
  drawBook() {
    if (!this.book || !this.book.ready) return;
    const { bids, asks } = this.book.sorted();
    const box = this.root.querySelector(".book");
    box.setAttribute("data-last-update-id", String(this.book.lastUpdateId));
    fillSide(box.querySelector(".asks"), asks.slice(0, BOOK_LEVELS), "SELL", true);
    fillSide(box.querySelector(".bids"), bids.slice(0, BOOK_LEVELS), "BUY", false);
    const spread = box.querySelector(".spread");
    if (bids.length && asks.length) {
      setText(spread, `spread ${fmt(asks[0].p - bids[0].p)}`);
    } else {
      setText(spread, bids.length || asks.length ? "one-sided book" : "empty book");
    }
    drawDepth(this.root.querySelector("canvas.depth"), bids, asks);
  }

  // -- trades and liquidations --------------------------------------------------------------
  async loadTrades(symbol) {
    try {
      const rows = await get("/fapi/v1/trades", { symbol, limit: KEEP_ROWS });
      if (this.symbol !== symbol) return;
      const seen = new Set([...this.trades.children].map((tr) => tr.dataset.tradeId));
      for (const t of rows) {
        if (!seen.has(String(t.id))) this.addTrade(t.id, t.time, t.price, t.qty, t.isBuyerMaker, true);
      }
      this.sortTrades();
    } catch (err) {
      notice(`trades ${symbol}: ${err.message}`);
    }
  }

  addTrade(id, time, price, qty, buyerMaker, initial = false) {
    const tr = el("tr", { class: buyerMaker ? "sell" : "buy", "data-trade-id": id },
      el("td", { text: hms(time) }), el("td", { class: "num price", text: price }),
      el("td", { class: "num qty", text: qty }));
    if (initial) this.trades.append(tr);
    else this.trades.prepend(tr);
    while (this.trades.children.length > KEEP_ROWS) this.trades.lastChild.remove();
  }

  sortTrades() {
    const rows = [...this.trades.children].sort(
      (a, b) => Number(b.dataset.tradeId) - Number(a.dataset.tradeId));
    this.trades.replaceChildren(...rows.slice(0, KEEP_ROWS));
  }

  addLiquidation(o) {
    this.liqs.prepend(el("tr", { class: o.S === "SELL" ? "sell" : "buy" },
      el("td", { text: hms(o.T) }), el("td", { text: o.S }), el("td", { class: "num", text: o.q }),
      el("td", { class: "num", text: o.p }), el("td", { class: "num", text: o.ap }),
      el("td", { text: o.X })));
    while (this.liqs.children.length > KEEP_ROWS) this.liqs.lastChild.remove();
  }
}

function fillSide(body, levels, side, reversed) {
  let total = 0n;
  const rows = levels.map((lv) => {
    total = add(total, lv.q);
    return el("tr", { class: side === "BUY" ? "buy" : "sell", "data-side": side,
                      "data-price": lv.ps, "data-qty": lv.qs },
      el("td", { class: "num price", text: lv.ps }), el("td", { class: "num qty", text: lv.qs }),
      el("td", { class: "num total", text: fmt(total) }));
  });
  if (reversed) rows.reverse();
  body.replaceChildren(...rows);
}

// Cumulative depth around the middle; floats for drawing only, the labels are the levels' own
// price strings.
function drawDepth(canvas, bids, asks) {
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth;
  const h = canvas.clientHeight;
  if (!w || !h) return;
  if (canvas.width !== Math.round(w * ratio)) canvas.width = Math.round(w * ratio);
  if (canvas.height !== Math.round(h * ratio)) canvas.height = Math.round(h * ratio);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, w, h);
  ctx.fillStyle = "#8a91a0";
  ctx.font = "11px sans-serif";
  if (!bids.length && !asks.length) {
    ctx.fillText("empty book", 8, 16);
    return;
  }
  const b = bids.slice(0, 100);
  const a = asks.slice(0, 100);
  const cum = (side) => {
    let t = 0n;
    return side.map((lv) => {
      t += lv.q;
      return [toFloat(lv.p), toFloat(t)];
    });
  };
  const cb = cum(b);
  const ca = cum(a);
  const worstBid = b.length ? cb[cb.length - 1][0] : ca[0][0];
  const worstAsk = a.length ? ca[ca.length - 1][0] : cb[0][0];
  const margin = (worstAsk - worstBid) * 0.06 || Math.abs(worstAsk) * 0.001 || 1;
  const lo = worstBid - margin;  // each side's last level reaches the edge
  const hi = worstAsk + margin;
  const top = Math.max(cb.length ? cb[cb.length - 1][1] : 0, ca.length ? ca[ca.length - 1][1] : 0);
  const pad = 18;
  const x = (p) => (hi > lo ? ((p - lo) / (hi - lo)) * (w - 2) + 1 : w / 2);
  const y = (q) => h - pad - (top > 0 ? (q / top) * (h - pad - 6) : 0);
  const area = (points, edge, stroke, fill) => {  // a step line from the best level outwards
    if (!points.length) return;
    ctx.beginPath();
    ctx.moveTo(x(points[0][0]), y(0));
    let prev = 0;
    for (const [p, q] of points) {
      ctx.lineTo(x(p), y(prev));
      ctx.lineTo(x(p), y(q));
      prev = q;
    }
    ctx.lineTo(x(edge), y(prev));
    ctx.lineTo(x(edge), y(0));
    ctx.closePath();
    ctx.fillStyle = fill;
    ctx.fill();
    ctx.strokeStyle = stroke;
    ctx.stroke();
  };
  area(cb, lo, "#26a69a", "rgba(38,166,154,0.25)");
  area(ca, hi, "#ef5350", "rgba(239,83,80,0.25)");
  ctx.fillStyle = "#8a91a0";
  ctx.textBaseline = "bottom";
  if (b.length) {
    ctx.textAlign = "left";
    ctx.fillText(b[b.length - 1].ps, 2, h - 2);
  }
  if (a.length) {
    ctx.textAlign = "right";
    ctx.fillText(a[a.length - 1].ps, w - 2, h - 2);
  }
  ctx.textAlign = "center";
  if (b.length && a.length) ctx.fillText(`${b[0].ps} | ${a[0].ps}`, w / 2, h - 2);
}
