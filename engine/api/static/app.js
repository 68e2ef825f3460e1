// The page: a hash router over four views (markets, a symbol, an account, insurance and ADL),
// one WebSocket for the market streams, the venue's clock. No build step: ES modules served
// from /web/, the chart library vendored in /web/vendor/.
import { MarketStream, onWeight } from "./api.js";
import { AccountView } from "./account.js";
import { Markets } from "./markets.js";
import { RiskView } from "./risk.js";
import { SymbolView } from "./symbol.js";
import { $, ServerClock, notice, setText } from "./util.js";

const VIEWS = ["markets", "symbol", "account", "risk"];

function setStatus(ok) {
  const s = $("#status");
  s.classList.toggle("live", ok);
  setText(s, ok ? "live" : "reconnecting…");
}

async function main() {
  onWeight((w) => setText($("#weight"), `request weight used this minute: ${w}`));
  const clock = new ServerClock();
  const stream = new MarketStream(setStatus);
  try {
    await clock.sync();
  } catch (err) {
    notice(`server time: ${err.message}`);
  }
  setInterval(() => clock.sync().catch(() => {}), 60000);
  const markets = new Markets(stream, clock, $("#view-markets"));
  await markets.init();
  const symbol = new SymbolView(stream, markets, $("#view-symbol"));
  const account = new AccountView(markets, $("#view-account"));
  const risk = new RiskView(stream, $("#view-risk"));

  function route() {
    const parts = (location.hash || "#/markets").replace(/^#\/?/, "").split("/");
    const view = VIEWS.includes(parts[0]) ? parts[0] : "markets";
    for (const v of VIEWS) $(`#view-${v}`).hidden = v !== view;
    for (const a of document.querySelectorAll("nav a")) {
      a.classList.toggle("active", a.dataset.view === view);
    }
    if (view === "symbol") {
      const name = (parts[1] || "BTCUSDT").toUpperCase();
      symbol.show(name);
      $("#nav-symbol").href = `#/symbol/${name}`;
      setText($("#nav-symbol"), name);
    } else {
      symbol.leave();
    }
    if (view === "risk") risk.show();
    else risk.hide();
    document.body.dataset.view = view;
  }
  window.addEventListener("hashchange", route);
  route();
  document.body.dataset.ready = "true";
  void account;
}

main().catch((err) => notice(`the page could not start: ${err.message || err}`));
