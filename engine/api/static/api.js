// The venue's Binance API from the browser: public REST reads, signed requests (HMAC-SHA256
// with WebCrypto; the key and secret stay in this page's memory and go nowhere but into the
// signature and the X-MBX-APIKEY header), and the WebSocket streams. Errors are shown in the
// page, never thrown into the console.

export class ApiError extends Error {
  constructor(status, code, msg) {
    super(`${code}: ${msg}`);
    this.status = status;
    this.code = code;
    this.msg = msg;
  }
}

const listeners = new Set();  // (usedWeight) => void
export let usedWeight = 0;
let backoffUntil = 0;

export function onWeight(fn) {
  listeners.add(fn);
}

function query(params) {
  const parts = [];
  for (const [k, v] of Object.entries(params || {})) {
    if (v === undefined || v === null) continue;
    parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`);
  }
  return parts.join("&");
}

async function request(method, path, qs, headers) {
  if (Date.now() < backoffUntil) {
    throw new ApiError(429, -1003, "backing off after the request weight limit");
  }
  const url = qs ? `${path}?${qs}` : path;
  let response;
  try {
    response = await fetch(url, { method, headers, cache: "no-store" });
  } catch (err) {
    throw new ApiError(0, 0, `network: ${err.message}`);
  }
  const weight = response.headers.get("X-MBX-USED-WEIGHT-1M");
  if (weight !== null) {
    usedWeight = Number(weight);
    for (const fn of listeners) fn(usedWeight);
  }
  let body;
  try {
    body = await response.json();
  } catch (err) {
    throw new ApiError(response.status, 0, "not JSON");
  }
  if (!response.ok) {
    if (response.status === 429 || response.status === 418) {
      const retry = Number(response.headers.get("Retry-After") || "10");
      backoffUntil = Date.now() + 1000 * retry;
    }
    throw new ApiError(response.status, body.code ?? 0, body.msg ?? "error");
  }
  return body;
}

export function get(path, params) {
  return request("GET", path, query(params));
}

// -- signed requests --------------------------------------------------------------------------
function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}

export class Credentials {
  constructor(apiKey, secret) {
    if (!globalThis.crypto || !crypto.subtle) {
      throw new Error("WebCrypto is not available: open the page at http://127.0.0.1 or localhost");
    }
    this.apiKey = apiKey;
    this.keyPromise = crypto.subtle.importKey(
      "raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false,
      ["sign"]);
  }

  async sign(text) {
    const key = await this.keyPromise;
    return hex(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(text)));
  }

  // A SIGNED endpoint: parameters in the query string with timestamp and recvWindow, then the
  // HMAC-SHA256 of that query string as `signature` (Binance's rule; the body stays empty).
  async signed(method, path, params) {
    const qs = query({ ...params, recvWindow: 10000, timestamp: Date.now() });
    const signature = await this.sign(qs);
    return request(method, path, `${qs}&signature=${signature}`,
                   { "X-MBX-APIKEY": this.apiKey });
  }

  // A USER_STREAM endpoint (listenKey): the key only.
  keyed(method, path, params) {
    return request(method, path, query(params), { "X-MBX-APIKEY": this.apiKey });
  }
}

// -- WebSocket ----------------------------------------------------------------------------------
function wsUrl(path) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}`;
}

// One combined-stream connection (/stream) whose subscriptions follow what the views want;
// reconnects (1 s, growing to 10 s) and re-subscribes; `onOpen` callbacks let a view resync
// (a local order book starts again from a snapshot).
export class MarketStream {
  constructor(onStatus) {
    this.handlers = new Map();  // stream name -> Set of fn(data)
    this.openers = new Set();
    this.onStatus = onStatus || (() => {});
    this.ws = null;
    this.nextId = 1;
    this.delay = 1000;
    this.connect();
  }

  connect() {
    const ws = new WebSocket(wsUrl("/stream"));
    this.ws = ws;
    ws.onopen = () => {
      this.delay = 1000;
      this.onStatus(true);
      const names = [...this.handlers.keys()];
      if (names.length) this.send("SUBSCRIBE", names);
      for (const fn of this.openers) fn();
    };
    ws.onmessage = (event) => {
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch (err) {
        return;
      }
      if (!msg.stream) return;  // replies to SUBSCRIBE / UNSUBSCRIBE
      const set = this.handlers.get(msg.stream);
      if (set) for (const fn of set) fn(msg.data);
    };
    ws.onclose = () => {
      this.onStatus(false);
      setTimeout(() => this.connect(), this.delay);
      this.delay = Math.min(this.delay * 2, 10000);
    };
    ws.onerror = () => {};  // onclose follows
  }

  get open() {
    return this.ws && this.ws.readyState === WebSocket.OPEN;
  }

  send(method, params) {
    if (this.open) this.ws.send(JSON.stringify({ method, params, id: this.nextId++ }));
  }

  on(name, fn) {
    let set = this.handlers.get(name);
    if (!set) {
      set = new Set();
      this.handlers.set(name, set);
      this.send("SUBSCRIBE", [name]);
    }
    set.add(fn);
    return () => this.off(name, fn);
  }

  off(name, fn) {
    const set = this.handlers.get(name);
    if (!set) return;
    set.delete(fn);
    if (!set.size) {
      this.handlers.delete(name);
      this.send("UNSUBSCRIBE", [name]);
    }
  }

  onOpen(fn) {
    this.openers.add(fn);
    return () => this.openers.delete(fn);
  }
}

// A user-data stream: /ws/<listenKey>, raw payloads.
export function userStream(listenKey, onEvent, onClose, onOpen) {
  const ws = new WebSocket(wsUrl(`/ws/${encodeURIComponent(listenKey)}`));
  ws.onopen = () => onOpen && onOpen();
  ws.onmessage = (event) => {
    try {
      onEvent(JSON.parse(event.data));
    } catch (err) {
      // a malformed message is dropped
    }
  };
  ws.onclose = () => onClose();
  ws.onerror = () => {};
  return ws;
}
