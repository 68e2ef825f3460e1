// The insurance funds and auto-deleveraging: each fund's balance and recent changes (the
// venue's /venue/v1/insurance), Binance's /fapi/v1/insuranceBalance groups, ADL trades
// (/venue/v1/adlTrades), and every liquidation order since the page opened (!forceOrder@arr).
import { get } from "./api.js";
import { parse, toFloat } from "./dec.js";
import { dateTime, el, hms, notice, setText } from "./util.js";

const POLL_MS = 3000;
const KEEP_ROWS = 100;

export class RiskView {
  constructor(stream, root) {
    this.root = root;
    this.timer = null;
    this.history = [];
    stream.on("!forceOrder@arr", (f) => this.addLiquidation(f.o));
  }

  show() {
    if (this.timer) return;
    this.poll();
    this.timer = setInterval(() => this.poll(), POLL_MS);
    if (!this.groups) this.loadGroups();
  }

  hide() {
    clearInterval(this.timer);
    this.timer = null;
  }

  async loadGroups() {
    try {
      this.groups = await get("/fapi/v1/insuranceBalance");
      this.paintFunds();
    } catch (err) {
      notice(`insurance balance: ${err.message}`);
    }
  }

  async poll() {
    try {
      const [ins, adl] = await Promise.all([
        get("/venue/v1/insurance", { limit: 500 }), get("/venue/v1/adlTrades", { limit: 50 })]);
      this.funds = ins.funds;
      this.history = ins.history;
      this.paintFunds();
      this.paintHistory();
      this.root.querySelector(".adl tbody").replaceChildren(...adl.slice().reverse().map((a) =>
        el("tr", { "data-trade-id": a.tradeId, class: a.side === "SELL" ? "sell" : "buy" },
          el("td", { text: dateTime(a.time) }), el("td", { text: a.symbol }),
          el("td", { text: a.side === "SELL" ? "long closed" : a.side === "BUY" ? "short closed" : "" }),
          el("td", { class: "num", text: a.price }), el("td", { class: "num", text: a.qty }))));
      setText(this.root.querySelector(".adl-count"), `${adl.length} shown`);
    } catch (err) {
      notice(`insurance and ADL: ${err.message}`);
    }
  }

  paintFunds() {
    if (!this.funds) return;
    const covers = new Map();
    for (const g of this.groups || []) {
      for (const a of g.assets) covers.set(a.asset, g.symbols.length);
    }
    this.root.querySelector(".funds tbody").replaceChildren(...this.funds.map((f) =>
      el("tr", { "data-asset": f.asset, class: parse(f.balance) < 0n ? "sell" : "" },
        el("td", { text: f.asset }), el("td", { class: "num balance", text: f.balance }),
        el("td", { text: f.updateTime ? dateTime(f.updateTime) : "never changed" }),
        el("td", { class: "num", text: covers.has(f.asset) ? `${covers.get(f.asset)} USD-M symbols` : "" }))));
  }

  paintHistory() {
    const rows = this.history.slice(-50).reverse();
    this.root.querySelector(".fund-history tbody").replaceChildren(...rows.map((r) =>
      el("tr", { class: parse(r.change) < 0n ? "sell" : "buy" },
        el("td", { text: dateTime(r.time) }), el("td", { text: r.asset }),
        el("td", { text: r.type }), el("td", { text: r.symbol }),
        el("td", { class: "num", text: r.change }), el("td", { class: "num", text: r.balance }))));
    drawFund(this.root.querySelector("canvas.fund"), this.history.filter((r) => r.asset === "USDT"));
  }

  addLiquidation(o) {
    const body = this.root.querySelector(".all-liquidations tbody");
    body.prepend(el("tr", { class: o.S === "SELL" ? "sell" : "buy" },
      el("td", { text: hms(o.T) }), el("td", { text: o.s }), el("td", { text: o.S }),
      el("td", { class: "num", text: o.q }), el("td", { class: "num", text: o.p }),
      el("td", { class: "num", text: o.ap }), el("td", { text: o.X })));
    while (body.children.length > KEEP_ROWS) body.lastChild.remove();
  }
}

// The USDT fund's balance after each change (floats for drawing; the figures are in the table).
function drawFund(canvas, rows) {
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth;
  const h = canvas.clientHeight;
  if (!w || !h) return;
  canvas.width = Math.round(w * ratio);
  canvas.height = Math.round(h * ratio);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, w, h);
  ctx.font = "11px sans-serif";
  ctx.fillStyle = "#8a91a0";
  if (rows.length < 1) {
    ctx.fillText("the USDT fund has not changed since the venue started", 8, 16);
    return;
  }
  const pts = rows.map((r) => [r.time, toFloat(parse(r.balance))]);
  const t0 = pts[0][0];
  const t1 = Math.max(pts[pts.length - 1][0], t0 + 1);
  pts.push([t1, pts[pts.length - 1][1]]);  // flat to the right edge
  const lo = Math.min(...pts.map((p) => p[1]));
  const hi = Math.max(...pts.map((p) => p[1]));
  const x = (t) => (t1 > t0 ? ((t - t0) / (t1 - t0)) * (w - 10) + 5 : w / 2);
  const y = (v) => (hi > lo ? h - 16 - ((v - lo) / (hi - lo)) * (h - 28) : h / 2);
  ctx.beginPath();
  ctx.moveTo(x(pts[0][0]), y(pts[0][1]));
  for (let i = 1; i < pts.length; i++) {
    ctx.lineTo(x(pts[i][0]), y(pts[i - 1][1]));
    ctx.lineTo(x(pts[i][0]), y(pts[i][1]));
  }
  ctx.strokeStyle = "#e0b84c";
  ctx.stroke();
  ctx.textBaseline = "bottom";
  ctx.fillText(`${rows[rows.length - 1].balance} USDT`, 6, 14);
  ctx.fillText(hms(t0), 4, h - 2);
  ctx.textAlign = "right";
  ctx.fillText(hms(t1), w - 4, h - 2);
}
