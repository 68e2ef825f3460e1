// Small helpers shared by the views: elements, times, messages in the page.
import { get } from "./api.js";

export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k.startsWith("data-")) node.setAttribute(k, String(v));
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

export function setText(node, text) {
  const t = text === undefined || text === null ? "" : String(text);
  if (node.textContent !== t) node.textContent = t;
}

const pad = (n, w = 2) => String(n).padStart(w, "0");

// Venue times (ms since the epoch) in UTC.
export function hms(ms) {
  const d = new Date(Number(ms));
  return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
}

export function dateTime(ms) {
  const d = new Date(Number(ms));
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${hms(ms)}`;
}

export function countdown(ms) {
  if (!(ms > 0)) return "00:00:00";
  const s = Math.floor(ms / 1000);
  return `${pad(Math.floor(s / 3600))}:${pad(Math.floor(s / 60) % 60)}:${pad(s % 60)}`;
}

// Messages for the user, in the page's message bar (never the console: the page's console
// stays clean, and the tests check it).
export function notice(text, kind = "error") {
  const bar = document.getElementById("messages");
  if (!bar) return;
  const item = el("div", { class: `message ${kind}`, text: `${hms(Date.now())} ${text}` });
  bar.prepend(item);
  while (bar.children.length > 5) bar.lastChild.remove();
  setTimeout(() => item.remove(), 15000);
}

// Run an async function, any error shown in the page.
export function safely(fn, what) {
  return (...args) => {
    try {
      const result = fn(...args);
      if (result && typeof result.catch === "function") {
        return result.catch((err) => notice(`${what}: ${err.message || err}`));
      }
      return result;
    } catch (err) {
      notice(`${what}: ${err.message || err}`);
      return undefined;
    }
  };
}

// At most one run of `fn` per animation frame, with the latest arguments.
export function perFrame(fn) {
  let pending = false;
  let latest = [];
  return (...args) => {
    latest = args;
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      fn(...latest);
    });
  };
}

// The venue's clock: its time from GET /fapi/v1/time, kept as an offset from this machine's
// (funding countdowns count down on the venue's clock).
export class ServerClock {
  constructor() {
    this.offset = 0;
  }

  async sync() {
    const t0 = Date.now();
    const r = await get("/fapi/v1/time");
    const t1 = Date.now();
    this.offset = r.serverTime - Math.round((t0 + t1) / 2);
  }

  now() {
    return Date.now() + this.offset;
  }
}
