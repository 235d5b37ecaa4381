// Shared by the station and board pages: API calls with the tablet cookie, the live stream with
// a connection indicator that recovers by itself, and small formatting helpers.
"use strict";

const T = JSON.parse(document.getElementById("strings").textContent);
const LANG = document.documentElement.lang.startsWith("zh") ? "zh" : "en";

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

function newKey() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function api(method, path, body) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  // One key per tap: if the network drops the answer, the same request is sent again with the
  // same key and the MES counts it once.
  if (method !== "GET") init.headers["Idempotency-Key"] = newKey();
  let res;
  for (let attempt = 0; ; attempt++) {
    try {
      res = await fetch(path, init);
      break;
    } catch (err) {
      if (method === "GET" || attempt >= 3) throw err;
      await new Promise((r) => setTimeout(r, 500 * (attempt + 1)));
    }
  }
  if (res.status === 401 && !path.includes("/login")) {
    location.href = "/login?next=" + encodeURIComponent(location.pathname);
    throw new ApiError(401, T.invalid_token);
  }
  const data = await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(res.status, errorText(data) || res.statusText);
  return data;
}

function errorText(data) {
  if (!data || data.detail === undefined) return "";
  const d = data.detail;
  if (typeof d === "string") return d;
  if (Array.isArray(d)) return d.map((e) => e.msg).join("; ");
  return d.message || d.code || "";
}

// EventSource reconnects by itself after a dropped connection; when the server refuses it (the
// stream is CLOSED, e.g. during a restart) we reopen it ourselves with a growing delay. Every
// (re)connect calls onOpen so the page re-fetches what it may have missed.
class LiveStream {
  constructor(url, { onMessage, onOpen, indicator }) {
    this.url = url; this.onMessage = onMessage; this.onOpen = onOpen;
    this.indicator = indicator; this.delay = 1000; this.source = null;
    this.connect();
  }
  connect() {
    const es = new EventSource(this.url, { withCredentials: true });
    this.source = es;
    es.onopen = () => { this.delay = 1000; this.setState(true); };
    es.onmessage = (ev) => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch { return; }
      if (msg.type === "hello" || msg.type === "resync") this.onOpen();
      else this.onMessage(msg);
    };
    es.onerror = () => {
      this.setState(false);
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
