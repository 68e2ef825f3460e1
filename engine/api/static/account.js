// An account, given its API key and secret in the page (kept in this page's memory only; every
// request is signed here with WebCrypto; the server never stores them for the page): balances
// per asset, positions with entry, mark, liquidation price and margin ratio, a gauge per margin
// scope (amber from 80 %, red from 100 % and after a liquidation), open and conditional
// orders, fills, income and the account's liquidations. Live: the user-data stream (a
// listenKey) triggers re-reads; account and positions are re-read every few seconds as marks
// move.
import { Credentials, userStream } from "./api.js";
import { SCALE, fmt, parse, percent, ratio, toFloat } from "./dec.js";
import { dateTime, el, hms, notice, setText } from "./util.js";

const ACCOUNT_EVERY_MS = 3000;
const ORDERS_EVERY_MS = 60000;
const HISTORY_EVERY_MS = 60000;
const KEEPALIVE_MS = 30 * 60000;
const AMBER = (SCALE * 8n) / 10n;  // 80 %: the risk engine's margin call
const RED = SCALE;  // 100 %: liquidation
const SENTINEL = 999n * SCALE;  // the engine's ratio of a scope whose balance is <= 0

function isLiquidationOrder(o) {
  return (o.c || "").startsWith("autoclose-") || o.o === "LIQUIDATION" || o.x === "CALCULATED";
}

export class AccountView {
  constructor(markets, root) {
    this.markets = markets;
    this.root = root;
    this.creds = null;
    this.ws = null;
    this.timers = [];
    this.positions = new Map();  // "SYMBOL|SIDE" -> {acct row, risk row}
    this.marginTypes = new Map();  // symbol -> "cross" | "isolated" (positionRisk v2)
    this.liquidated = new Map();  // scope key -> {time, symbol}
    this.symbolsSeen = new Set();
    this.pending = {};
    const form = root.querySelector("form.credentials");
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.connect(form.querySelector("[name=apiKey]").value.trim(),
                   form.querySelector("[name=secret]").value.trim());
    });
    root.querySelector("button.disconnect").addEventListener("click", () => this.disconnect());
  }

  // -- connecting -----------------------------------------------------------------------------
  async connect(apiKey, secret) {
    this.disconnect();
    if (!apiKey || !secret) {
      notice("an API key and its secret are needed");
      return;
    }
    try {
      this.creds = new Credentials(apiKey, secret);
      await this.refresh();
    } catch (err) {
      this.creds = null;
      notice(`account: ${err.message}`);
      return;
    }
    const form = this.root.querySelector("form.credentials");
    form.querySelector("[name=secret]").value = "";  // not kept in the form either
    this.root.classList.add("connected");
    setText(this.root.querySelector(".key-shown"), `key ${apiKey.slice(0, 6)}…`);
    this.startUserStream();
    await Promise.all([this.refreshOrders(), this.refreshHistory()]);
    this.timers.push(setInterval(() => this.soon("refresh", 0), ACCOUNT_EVERY_MS));
    this.timers.push(setInterval(() => this.soon("refreshOrders", 0), ORDERS_EVERY_MS));
    this.timers.push(setInterval(() => this.soon("refreshHistory", 0), HISTORY_EVERY_MS));
  }

  disconnect() {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    if (this.ws) {
      this.ws.onclose = null;
      this.ws.close();
      this.ws = null;
    }
    this.creds = null;
    this.multi = undefined;
    this.listenKey = null;
    this.positions.clear();
    this.liquidated.clear();
    this.symbolsSeen.clear();
    this.root.classList.remove("connected");
    delete this.root.dataset.userStream;
    for (const body of this.root.querySelectorAll("tbody")) body.replaceChildren();
    this.root.querySelector(".gauges").replaceChildren();
    this.root.querySelector(".calls").replaceChildren();
  }

  async startUserStream() {
    const creds = this.creds;
    if (!creds) return;
    try {
      const { listenKey } = await creds.keyed("POST", "/fapi/v1/listenKey");
      if (creds !== this.creds) return;
      this.listenKey = listenKey;
      this.ws = userStream(listenKey, (m) => this.onUserEvent(m), () => {
        this.ws = null;
        delete this.root.dataset.userStream;
        if (this.creds === creds) setTimeout(() => this.startUserStream(), 2000);
      }, () => {
        this.root.dataset.userStream = "open";
      });
      if (!this.keepalive) {
        this.keepalive = setInterval(() => {
          if (this.creds) this.creds.keyed("PUT", "/fapi/v1/listenKey").catch(() => {});
        }, KEEPALIVE_MS);
      }
    } catch (err) {
      notice(`user stream: ${err.message}`);
      if (creds === this.creds) setTimeout(() => this.startUserStream(), 5000);
    }
  }

  onUserEvent(m) {
    switch (m.e) {
      case "ORDER_TRADE_UPDATE":
        if (isLiquidationOrder(m.o)) this.noteLiquidation(m.o.s, m.o.ps || "BOTH", m.o.T || m.E);
        this.soon("refresh", 200);
        this.soon("refreshOrders", 500);
        if (m.o.x === "TRADE" || isLiquidationOrder(m.o)) this.soon("refreshHistory", 1000);
        break;
      case "ACCOUNT_UPDATE":
        this.soon("refresh", 200);
        this.soon("refreshHistory", 1000);
        break;
      case "MARGIN_CALL":
        this.addCall(m);
        this.soon("refresh", 0);
        break;
      case "ALGO_UPDATE":
      case "CONDITIONAL_ORDER_TRIGGER_REJECT":
        this.soon("refreshOrders", 300);
        break;
      case "ACCOUNT_CONFIG_UPDATE":
        this.multi = undefined;  // read again: the mode may have changed
        this.soon("refresh", 200);
        break;
      case "listenKeyExpired":
        if (this.ws) this.ws.close();
        break;
      default:
        this.soon("refresh", 500);
    }
  }

  // Run `what` after `delay` ms, once however often it is asked for meanwhile.
  soon(what, delay) {
    if (this.pending[what]) return;
    this.pending[what] = setTimeout(async () => {
      try {
        if (this.creds) await this[what]();
      } catch (err) {
        notice(`account: ${err.message}`);
      } finally {
        this.pending[what] = null;
      }
    }, delay);
  }

  // -- account, positions, gauges -----------------------------------------------------------
  async refresh() {
    const creds = this.creds;
    if (this.multi === undefined) await this.readMode();
    const [acct, risk] = await Promise.all([
      creds.signed("GET", "/fapi/v3/account"), creds.signed("GET", "/fapi/v2/positionRisk")]);
    if (creds !== this.creds) return;
    acct.multiAssetsMargin = this.multi;
    const riskRows = new Map();
    for (const r of risk) {
      riskRows.set(`${r.symbol}|${r.positionSide}`, r);
      if (r.marginType) this.marginTypes.set(r.symbol, r.marginType);
    }
    const before = new Map([...this.positions].map(([k, p]) => [k, parse(p.acct.positionAmt)]));
    this.positions.clear();
    for (const p of acct.positions) {
      if (parse(p.positionAmt) === 0n) continue;
      const key = `${p.symbol}|${p.positionSide}`;
      this.positions.set(key, { acct: p, risk: riskRows.get(key) || {} });
      this.symbolsSeen.add(p.symbol);
    }
    // a position gone or smaller: read the fills and liquidations (forceOrders) at once, so a
    // liquidation shows even if its stream event was missed
    for (const [key, amt] of before) {
      const now = this.positions.has(key) ? parse(this.positions.get(key).acct.positionAmt) : 0n;
      if ((amt > 0n && now < amt) || (amt < 0n && now > amt)) this.soon("refreshHistory", 0);
    }
    this.paintBalances(acct);
    const scopes = this.scopes(acct);
    this.paintGauges(scopes);
    this.paintPositions(scopes);
    setText(this.root.querySelector(".updated"), `read ${hms(Date.now())}`);
  }

  // Multi-Assets mode or not (GET /fapi/v1/multiAssetsMargin; again on ACCOUNT_CONFIG_UPDATE).
  async readMode() {
    const r = await this.creds.signed("GET", "/fapi/v1/multiAssetsMargin");
    this.multi = r.multiAssetsMargin === true;
  }

  marginAsset(symbol) {
    const info = this.markets.info.get(symbol);
    return info ? info.marginAsset : "USDT";
  }

  isolated(p) {  // v3's account rows do not say; positionRisk v2's marginType does
    return p.acct.isolated === true || p.risk.marginType === "isolated";
  }

  scopeKey(symbol, side, isolated, multi) {
    if (isolated) return `iso:${symbol}|${side}`;
    return `cross:${multi ? "USD" : this.marginAsset(symbol)}`;
  }

  // Each margin scope's maintenance margin and balance, from the account's own figures (exact):
  // cross per asset = (asset's maintMargin - its isolated positions') / (crossWalletBalance +
  // crossUnPnl); Multi-Assets = totalMaintMargin / totalMarginBalance; isolated =
  // maintMargin / isolatedMargin (its wallet plus its unrealized PnL).
  scopes(acct) {
    const multi = acct.multiAssetsMargin === true;
    const scopes = new Map();
    const isoMM = new Map();
    for (const [key, p] of this.positions) {
      const [symbol, side] = key.split("|");
      if (!this.isolated(p)) continue;
      const asset = this.marginAsset(symbol);
      isoMM.set(asset, (isoMM.get(asset) || 0n) + parse(p.acct.maintMargin));
      scopes.set(this.scopeKey(symbol, side, true, multi), {
        label: `${symbol} ${side === "BOTH" ? "" : side} isolated`.replace("  ", " "),
        mm: parse(p.acct.maintMargin), balance: parse(p.acct.isolatedMargin), open: true });
    }
    if (multi) {
      scopes.set("cross:USD", { label: "cross, Multi-Assets (USD)",
        mm: parse(acct.totalMaintMargin), balance: parse(acct.totalMarginBalance), open: false });
    } else {
      for (const a of acct.assets) {
        const key = `cross:${a.asset}`;
        if (a.asset !== "USDT" && parse(a.walletBalance) === 0n && parse(a.maintMargin) === 0n) continue;
        scopes.set(key, { label: `cross ${a.asset}`,
          mm: parse(a.maintMargin) - (isoMM.get(a.asset) || 0n),
          balance: parse(a.crossWalletBalance) + parse(a.crossUnPnl), open: false });
      }
    }
    for (const [key, p] of this.positions) {
      const [symbol, side] = key.split("|");
      const s = scopes.get(this.scopeKey(symbol, side, this.isolated(p), multi));
      if (s) s.open = true;
    }
    for (const [key, liq] of this.liquidated) {  // a liquidated isolated position is gone
      if (!scopes.has(key)) {
        const [kind, rest] = key.split(":");
        const label = kind === "iso" ? `${rest.replace("|BOTH", "")} isolated` : `cross ${rest}`;
        scopes.set(key, { label, mm: 0n, balance: 0n, open: false });
      }
    }
    for (const [key, s] of scopes) {
      s.key = key;
      s.ratio = s.mm === 0n ? 0n : s.balance <= 0n ? SENTINEL : ratio(s.mm, s.balance);
      const liq = this.liquidated.get(key);
      s.liquidated = liq && !s.open ? liq : null;
      s.level = s.liquidated || s.ratio >= RED ? "red" : s.ratio >= AMBER ? "amber" : "ok";
    }
    return scopes;
  }

  noteLiquidation(symbol, side, time) {
    const isolated = this.marginTypes.get(symbol) === "isolated";
    const multi = this.multi === true;
    const key = this.scopeKey(symbol, side, isolated, multi);
    const prev = this.liquidated.get(key);
    if (!prev || prev.time < time) this.liquidated.set(key, { time, symbol });
  }

  paintBalances(acct) {
    const body = this.root.querySelector(".balances tbody");
    const rows = acct.assets.filter((a) => a.asset === "USDT" || parse(a.walletBalance) !== 0n ||
                                           parse(a.marginBalance) !== 0n);
    body.replaceChildren(...rows.map((a) => el("tr", { "data-asset": a.asset },
      el("td", { text: a.asset }), el("td", { class: "num", text: a.walletBalance }),
      el("td", { class: "num", text: a.unrealizedProfit }),
      el("td", { class: "num", text: a.marginBalance }),
      el("td", { class: "num", text: a.maintMargin }),
      el("td", { class: "num", text: a.availableBalance }),
      el("td", { class: "num", text: a.maxWithdrawAmount }))));
    setText(this.root.querySelector(".mode"),
            this.multi ? "Multi-Assets mode" : "Single-Asset mode");
  }

  paintGauges(scopes) {
    const box = this.root.querySelector(".gauges");
    box.replaceChildren(...[...scopes.values()].map(gauge));
  }

  paintPositions(scopes) {
    const body = this.root.querySelector(".positions tbody");
    const rows = [];
    for (const [key, p] of this.positions) {
      const [symbol, side] = key.split("|");
      const r = p.risk;
      const amt = parse(p.acct.positionAmt);
      const scope = scopes.get(this.scopeKey(symbol, side, this.isolated(p), this.multi));
      rows.push(el("tr", { "data-symbol": symbol, "data-position-side": side,
                           "data-liquidation-price": r.liquidationPrice,
                           class: amt > 0n ? "buy" : "sell" },
        el("td", {}, el("a", { href: `#/symbol/${symbol}`, text: symbol })),
        el("td", { text: side === "BOTH" ? (amt > 0n ? "LONG" : "SHORT") : side }),
        el("td", { class: "num", text: p.acct.positionAmt }),
        el("td", { class: "num entry", text: r.entryPrice }),
        el("td", { class: "num mark", text: r.markPrice }),
        el("td", { class: "num liquidation", text: r.liquidationPrice }),
        el("td", { class: "num", text: p.acct.unrealizedProfit }),
        el("td", { text: this.isolated(p) ? "isolated" : "cross" }),
        el("td", { class: "num", text: r.leverage ? `${r.leverage}x` : "" }),
        el("td", { class: `num ratio ${scope ? scope.level : ""}`,
                   "data-ratio": scope ? fmt(scope.ratio) : "",
                   text: scope ? `${percent(scope.ratio)} %` : "" })));
    }
    body.replaceChildren(...rows);
  }

  addCall(m) {
    const box = this.root.querySelector(".calls");
    const what = m.p && m.p.length ? m.p.map((p) => `${p.s} ${p.pa} (mark ${p.mp})`).join(", ") : "";
    box.prepend(el("div", { class: "message amber" },
      `margin call at ${dateTime(m.E)}${what ? ": " + what : ""}`));
    while (box.children.length > 3) box.lastChild.remove();
  }

  // -- orders ---------------------------------------------------------------------------------
  async refreshOrders() {
    const creds = this.creds;
    const open = await creds.signed("GET", "/fapi/v1/openOrders");
    let algo = [];
    let algoNote = "";
    try {
      algo = await creds.signed("GET", "/fapi/v1/openAlgoOrders");
      if (!Array.isArray(algo)) algo = algo.orders || [];
    } catch (err) {
      algoNote = `conditional orders unavailable here (${err.message})`;
    }
    if (creds !== this.creds) return;
    for (const o of open) this.symbolsSeen.add(o.symbol);
    const body = this.root.querySelector(".orders tbody");
    body.replaceChildren(...open.map((o) => el("tr", { "data-order-id": o.orderId,
                                                       class: o.side === "BUY" ? "buy" : "sell" },
      el("td", { text: dateTime(o.time) }), el("td", { text: o.symbol }),
      el("td", { text: o.side }), el("td", { text: o.type }),
      el("td", { class: "num", text: o.price }), el("td", { class: "num", text: o.origQty }),
      el("td", { class: "num", text: o.executedQty }), el("td", { text: o.status }))));
    const abody = this.root.querySelector(".algo tbody");
    abody.replaceChildren(...algo.map((o) => el("tr", { "data-algo-id": o.algoId ?? o.orderId,
                                                        class: o.side === "BUY" ? "buy" : "sell" },
      el("td", { text: dateTime(o.createTime ?? o.time ?? o.updateTime) }),
      el("td", { text: o.symbol }), el("td", { text: o.side }),
      el("td", { text: o.orderType ?? o.type }),
      el("td", { class: "num", text: o.triggerPrice ?? o.stopPrice ?? "" }),
      el("td", { class: "num", text: o.price ?? "" }),
      el("td", { class: "num", text: o.quantity ?? o.origQty ?? "" }),
      el("td", { text: o.algoStatus ?? o.status ?? "" }))));
    setText(this.root.querySelector(".algo-note"), algoNote);
  }

  // -- fills, income, liquidations ------------------------------------------------------------
  async refreshHistory() {
    const creds = this.creds;
    const now = Date.now();
    const [income, force] = await Promise.all([
      creds.signed("GET", "/fapi/v1/income", { startTime: now - 86400000, limit: 1000 }),
      creds.signed("GET", "/fapi/v1/forceOrders", { limit: 100 })]);
    if (creds !== this.creds) return;
    for (const r of income) if (r.symbol) this.symbolsSeen.add(r.symbol);
    for (const o of force) this.noteLiquidation(o.symbol, o.positionSide || "BOTH", o.updateTime || o.time);
    const fills = [];
    for (const symbol of [...this.symbolsSeen].sort()) {
      const rows = await creds.signed("GET", "/fapi/v1/userTrades", { symbol, limit: 50 });
      fills.push(...rows);
    }
    if (creds !== this.creds) return;
    fills.sort((a, b) => b.time - a.time || b.id - a.id);
    this.root.querySelector(".fills tbody").replaceChildren(...fills.slice(0, 50).map((t) =>
      el("tr", { "data-trade-id": t.id, class: t.side === "BUY" ? "buy" : "sell" },
        el("td", { text: dateTime(t.time) }), el("td", { text: t.symbol }),
        el("td", { text: t.side }), el("td", { class: "num", text: t.price }),
        el("td", { class: "num", text: t.qty }),
        el("td", { class: "num", text: `${t.commission} ${t.commissionAsset}` }),
        el("td", { class: "num", text: t.realizedPnl }), el("td", { text: t.maker ? "maker" : "taker" }))));
    const recent = income.slice(-50).reverse();
    this.root.querySelector(".income tbody").replaceChildren(...recent.map((r) =>
      el("tr", { class: parse(r.income) < 0n ? "sell" : "buy" },
        el("td", { text: dateTime(r.time) }), el("td", { text: r.incomeType }),
        el("td", { text: r.symbol }), el("td", { class: "num", text: `${r.income} ${r.asset}` }))));
    this.root.querySelector(".forced tbody").replaceChildren(...force.slice().reverse().map((o) =>
      el("tr", { class: "sell" }, el("td", { text: dateTime(o.updateTime || o.time) }),
        el("td", { text: o.symbol }), el("td", { text: o.side }),
        el("td", { class: "num", text: o.price }), el("td", { class: "num", text: o.avgPrice }),
        el("td", { class: "num", text: o.executedQty }), el("td", { text: o.status }))));
    this.soon("refresh", 0);  // a liquidation just learnt of may change a gauge
  }
}

// A semicircle gauge of a margin ratio: 0 at the left, 100 % straight right; amber from 80 %,
// red from 100 % (and after a liquidation). The needle's angle is a float (drawing only); the
// figure is the exact ratio.
function gauge(s) {
  const NS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", "0 0 120 70");
  svg.setAttribute("class", "dial");
  const arc = (from, to, cls) => {
    const a0 = Math.PI * (1 - from);
    const a1 = Math.PI * (1 - to);
    const p = (a) => `${60 + 50 * Math.cos(a)} ${62 - 50 * Math.sin(a)}`;
    const path = document.createElementNS(NS, "path");
    path.setAttribute("d", `M ${p(a0)} A 50 50 0 0 1 ${p(a1)}`);
    path.setAttribute("class", cls);
    svg.append(path);
  };
  arc(0, 0.8, "band ok");
  arc(0.8, 1, "band amber");
  const shown = s.liquidated ? 1 : Math.min(toFloat(s.ratio), 1.0);
  arc(0, Math.max(shown, 0.001), `value ${s.level}`);
  const a = Math.PI * (1 - shown);
  const needle = document.createElementNS(NS, "line");
  needle.setAttribute("x1", "60");
  needle.setAttribute("y1", "62");
  needle.setAttribute("x2", String(60 + 40 * Math.cos(a)));
  needle.setAttribute("y2", String(62 - 40 * Math.sin(a)));
  needle.setAttribute("class", "needle");
  svg.append(needle);
  const text = s.liquidated ? "liquidated" : s.ratio === SENTINEL ? "balance ≤ 0" : `${percent(s.ratio)} %`;
  return el("div", { class: `gauge ${s.level}`, "data-scope": s.key, "data-level": s.level,
                     "data-ratio": fmt(s.ratio), "data-liquidated": s.liquidated ? "true" : null },
    svg, el("div", { class: "figure", text }),
    el("div", { class: "label", text: s.label }),
    el("div", { class: "detail", text: s.liquidated
      ? `at ${dateTime(s.liquidated.time)} (${s.liquidated.symbol})`
      : `maint. ${fmt(s.mm)} / balance ${fmt(s.balance)}` }));
}
