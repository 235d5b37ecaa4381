// Shared by the station and board pages: API calls with the tablet cookie, the live stream with
// a connection indicator that recovers by itself, and small formatting helpers.
"use strict";

const T = JSON.parse(document.getElementById("strings").textContent);
const LANG = document.documentElement.lang.startsWith("zh") ? "zh" : "en";

class ApiError extends Error {
  // A refusal from the MES: `code` and `details` when the API gives them (see refusalText).
  constructor(status, message, code = null, details = null) {
    super(message); this.status = status; this.code = code; this.details = details || {};
  }
}
// The request never reached the MES (no network, server down): nothing was decided.
class NetworkError extends Error {}
// The MES answered 502/503/504 (e.g. its storage is down): nothing was saved yet.
class UnavailableError extends Error {
  constructor(retryAfterS) { super("unavailable"); this.retryAfterS = retryAfterS; }
}

function newKey() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// Whether the MES can be reached, as last seen by any request or the live stream.
const Net = {
  online: true, listeners: [],
  set(online) {
    if (this.online === online) return;
    this.online = online;
    for (const fn of this.listeners) fn(online);
  },
  onChange(fn) { this.listeners.push(fn); },
};

async function request(method, path, body, key) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (key) init.headers["Idempotency-Key"] = key;
  if (method !== "GET") {
    // Double-submit CSRF token: the server compares it with its mes_csrf cookie.
    const m = document.cookie.match(/(?:^|;\s*)mes_csrf=([^;]*)/);
    if (m) init.headers["X-CSRF-Token"] = decodeURIComponent(m[1]);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (err) {
    Net.set(false);
    throw new NetworkError(err.message);
  }
  Net.set(true);
  if ([502, 503, 504].includes(res.status)) {
    const after = parseInt(res.headers.get("Retry-After") || "", 10);
    throw new UnavailableError(Number.isFinite(after) ? after : 2);
  }
  if (res.status === 401 && !path.includes("/login")) {
    location.href = "/login?next=" + encodeURIComponent(location.pathname);
    throw new ApiError(401, T.invalid_token);
  }
  const data = await res.json().catch(() => null);
  if (!res.ok) {
    const d = data && data.detail;
    const obj = d && typeof d === "object" && !Array.isArray(d) ? d : null;
    throw new ApiError(res.status, errorText(data) || res.statusText,
                       obj ? obj.code : (Array.isArray(d) ? "invalid" : null),
                       obj ? obj.details : null);
  }
  return data;
}

// One request, answered or failed at once (reads, sign-in: things that make no sense later).
async function api(method, path, body) {
  return request(method, path, body, method !== "GET" ? newKey() : null);
}

function errorText(data) {
  if (!data || data.detail === undefined) return "";
  const d = data.detail;
  if (typeof d === "string") return d;
  if (Array.isArray(d)) return d.map((e) => e.msg).join("; ");
  return d.message || d.code || "";
}

function fill(template, values) {
  return template.replace(/\{(\w+)\}/g, (m, k) => (values[k] !== undefined && values[k] !== null
    ? String(values[k]) : m));
}

// What an operator reads for a refusal: the translated sentence of its code, with the numbers
// the MES gave, saying what to do; the server's (English, developer) text only as a fallback.
function refusalText(err) {
  if (err instanceof NetworkError) return T.not_sent;
  if (err instanceof UnavailableError) return T.not_saved;
  const d = { ...(err.details || {}), message: err.message };
  let key = err.code ? "rej_" + err.code : null;
  if (err.code === "sequence" && (d.action === "start" || d.action === "resume")) {
    key = "rej_sequence_start";
  } else if (err.code === "sequence" && d.action === "complete") key = "rej_sequence_complete";
  if (d.status) d.status_text = opStatusText(d.status);
  if (d.order_status) d.order_status_text = T["ord_" + d.order_status] || d.order_status;
  const template = key && T[key];
  if (template) {
    const text = fill(template, d);
    if (!/\{\w+\}/.test(text)) return text;  // every number known: the full sentence
  }
  return T.refused + ": " + err.message;
}

// Taps that mean something later too (start, pause, report, ...) go through an outbox: kept on
// the tablet (localStorage) with their Idempotency-Key and resent in order until the MES
// answers, so a tap made while the network or the MES storage is down is sent once it is back
// and counts once. Bounded: beyond MAX waiting taps new ones are refused on the tablet.
class Outbox {
  constructor(name, { onAnswer, onChange, max = 50 }) {
    this.storageKey = "mes-outbox:" + name;
    this.onAnswer = onAnswer; this.onChange = onChange; this.max = max;
    this.problem = null;  // null | "offline" | "storage"
    this.waiters = new Map();
    this.timer = null; this.pumping = false;
    try { this.items = JSON.parse(localStorage.getItem(this.storageKey) || "[]"); }
    catch { this.items = []; }
    if (this.items.length) setTimeout(() => this.pump(), 0);
  }
  save() {
    try { localStorage.setItem(this.storageKey, JSON.stringify(this.items)); } catch { /* full */ }
    this.onChange(this);
  }
  get size() { return this.items.length; }
  // Resolves with {ok: data} or {refused: ApiError} once the MES answered; calls onQueued the
  // first time the tap could not be delivered at once.
  send(path, body, label, onQueued) {
    if (this.items.length >= this.max) return Promise.resolve({ full: true });
    const item = { key: newKey(), path, body, label, at: new Date().toISOString() };
    this.items.push(item);
    this.save();
    const done = new Promise((resolve) => this.waiters.set(item.key, { resolve, onQueued }));
    this.pump();
    return done;
  }
  retrySoon(seconds) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.pump(), Math.min(30, Math.max(1, seconds)) * 1000);
  }
  async pump() {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.items.length) {
        const item = this.items[0];
        let answer;
        try {
          answer = { ok: await request("POST", item.path, item.body, item.key) };
        } catch (err) {
          if (err instanceof NetworkError || err instanceof UnavailableError) {
            this.problem = err instanceof NetworkError ? "offline" : "storage";
            for (const it of this.items) {
              const w = this.waiters.get(it.key);
              if (w && w.onQueued) { w.onQueued(this.problem); w.onQueued = null; }
            }
            this.save();
            this.retrySoon(err instanceof UnavailableError ? err.retryAfterS : 3);
            return;
          }
          answer = { refused: err };
        }
        this.items.shift();
        this.problem = null;
        this.save();
        const w = this.waiters.get(item.key);
        this.waiters.delete(item.key);
        if (w) w.resolve(answer);
        else this.onAnswer(item, answer);  // a tap from before a reload
      }
    } finally { this.pumping = false; }
  }
}

// EventSource reconnects by itself after a dropped connection; when the server refuses it (the
// stream is CLOSED, e.g. during a restart) we reopen it ourselves with a growing delay. Every
// (re)connect calls onOpen so the page re-fetches what it may have missed.
class LiveStream {
  constructor(url, { onMessage, onOpen, onError, indicator }) {
    this.url = url; this.onMessage = onMessage; this.onOpen = onOpen; this.onError = onError;
    this.indicator = indicator; this.delay = 1000; this.source = null;
    this.connect();
  }
  connect() {
    const es = new EventSource(this.url, { withCredentials: true });
    this.source = es;
    es.onopen = () => { this.delay = 1000; this.setState(true); Net.set(true); };
    es.onmessage = (ev) => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch { return; }
      if (msg.type === "hello" || msg.type === "resync") this.onOpen();
      else this.onMessage(msg);
    };
    es.onerror = () => {
      this.setState(false);
      if (this.onError) this.onError();
      if (es.readyState === EventSource.CLOSED) {
        setTimeout(() => this.connect(), this.delay);
        this.delay = Math.min(this.delay * 2, 15000);
      }
    };
  }
  setState(on) {
    const el = this.indicator;
    el.classList.toggle("on", on);
    el.classList.toggle("off", !on);
    el.querySelector("#conn-text").textContent = on ? T.live : T.reconnecting;
  }
}

// Coalesces refresh requests: at most one fetch in flight, one more queued behind it.
function coalesced(fetcher, minGapMs = 250) {
  let running = false, again = false;
  return async function run() {
    if (running) { again = true; return; }
    running = true;
    try { await fetcher(); } catch (err) { console.warn(err); }
    finally {
      setTimeout(() => { running = false; if (again) { again = false; run(); } }, minGapMs);
    }
  };
}

function fmtTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const sameDay = d.toDateString() === new Date().toDateString();
  const opts = sameDay ? { hour: "2-digit", minute: "2-digit" }
                       : { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" };
  return d.toLocaleString(LANG === "zh" ? "zh-CN" : "en-GB", opts);
}

function fmtNum(n) { return Number(n || 0).toLocaleString(LANG === "zh" ? "zh-CN" : "en-US"); }

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) node.setAttribute(k, v);
  }
  for (const c of children) {
    if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c));
  }
  return node;
}

function opStatusText(s) { return T["op_" + s] || s; }
function stateText(s) { return T["state_" + s] || s; }
