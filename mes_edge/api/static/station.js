// The station tablet: current operation with live counts, queue, commands, reports, downtime
// reasons, scans and operator sign-in. Data from /api/v1/stations/<wc>, live via SSE.
"use strict";

const CFG = JSON.parse(document.getElementById("config").textContent);
const BASE = "/api/v1/stations/" + encodeURIComponent(CFG.workCenter);
const $ = (id) => document.getElementById(id);
let station = null;
let focusOp = null;  // the running operation, else the first paused one
let scrapReason = null;

function reasonText(r) { return (r.text && (r.text[LANG] || r.text.en)) || r.code; }

function toast(text, error = false) {
  const t = $("toast");
  t.textContent = text;
  t.classList.toggle("error", error);
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, error ? 6000 : 2500);
}

const refresh = coalesced(async () => render(await api("GET", BASE)));

function render(st) {
  station = st;
  renderMachine(st.machine_state, st.since);
  const op = $("operator");
  op.classList.toggle("missing", !st.operator);
  $("operator-name").textContent = st.operator ? st.operator.name : T.no_operator;
  renderDowntime(st);
  focusOp = st.current || st.queue.find((q) => q.status === "paused") || null;
  renderCurrent(focusOp);
  renderButtons(st);
  renderQueue(st);
}

function renderMachine(state, since) {
  const m = $("machine");
  // A manual station without a PLC has no machine state to show.
  m.hidden = state === "unknown" && CFG.counting === "operator";
  m.className = "machine state-" + state;
  $("machine-text").textContent = stateText(state);
  $("machine-since").textContent = since ? T.since + " " + fmtTime(since) : "";
}

function renderDowntime(st) {
  const missing = st.downtimes.find((d) => !d.reason);
  const box = $("downtime");
  box.hidden = !missing || st.downtime_reasons.length === 0;
  if (box.hidden) return;
  $("downtime-title").textContent = missing.open ? T.machine_stopped + " · " + stateText(missing.state)
                                                 : T.no_reason + " · " + stateText(missing.state);
  $("downtime-since").textContent = T.since + " " + fmtTime(missing.start);
  const grid = $("downtime-reasons");
  grid.replaceChildren(...st.downtime_reasons.map((r) => el("button", {
    class: "btn neutral", type: "button", "data-reason": r.code,
    onclick: () => act("/downtime-reason", { reason: r.code, downtime_id: missing.downtime_id }),
  }, reasonText(r))));
}

function setCount(id, value) {
  const node = $(id);
  const text = fmtNum(value);
  if (node.textContent !== text) {
    node.textContent = text;
    node.classList.remove("bump");
    void node.offsetWidth;  // restart the animation
    node.classList.add("bump");
  }
}

function renderCurrent(op) {
  $("current-empty").hidden = !!op;
  $("current-body").hidden = !op;
  const pill = $("current-status");
  pill.hidden = !op;
  if (!op) return;
  pill.className = "pill " + op.status;
  pill.textContent = opStatusText(op.status);
  $("cur-order").textContent = op.order_id;
  $("cur-op").textContent = op.op_no;
  $("cur-material").textContent = op.material;
  $("cur-desc").textContent = op.description || "";
  renderCounts(op);
  $("cur-counting").textContent = op.counting === "machine" ? T.counted_by_machine
                                                             : T.counted_by_operator;
  $("cur-available").textContent = T.available + ": " + fmtNum(op.available);
  $("cur-due").textContent = op.due ? T.due + ": " + fmtTime(op.due) : "";
}

function renderCounts(op) {
  setCount("cnt-good", op.good);
  setCount("cnt-scrap", op.scrap);
  setCount("cnt-planned", op.planned_qty);
  const pct = op.planned_qty ? Math.min(100, (100 * op.good) / op.planned_qty) : 0;
  $("progress-bar").style.width = pct.toFixed(1) + "%";
}

function renderButtons(st) {
  const running = st.current;
  const paused = !running && focusOp && focusOp.status === "paused";
  const startable = st.queue.find((q) => q.status === "ready");
  $("btn-start").disabled = !!running || !!paused || !startable;
  $("btn-pause").disabled = !running;
  $("btn-resume").disabled = !paused;
  $("btn-complete").disabled = !focusOp;
  const report = $("btn-report");
  report.hidden = !focusOp || focusOp.counting !== "operator";
  report.disabled = !focusOp;
}

function renderQueue(st) {
  const items = st.queue.filter((q) => !focusOp || q.order_id !== focusOp.order_id
                                        || q.op_no !== focusOp.op_no);
  $("queue-count").textContent = items.length;
  $("queue-empty").hidden = items.length > 0;
  $("queue").replaceChildren(...items.map((q) => {
    const ref = { order_id: q.order_id, op_no: q.op_no };
    let button = null;
    if (q.status === "ready" && !st.current) {
      button = el("button", { class: "btn go", type: "button", onclick: () => act("/start", ref) },
                  T.start);
    } else if (q.status === "paused" && !st.current) {
      button = el("button", { class: "btn go", type: "button", onclick: () => act("/resume", ref) },
                  T.resume);
    }
    const sub = [q.material, opStatusText(q.status), T.available + " " + fmtNum(q.available)];
    if (q.due) sub.push(T.due + " " + fmtTime(q.due));
    return el("li", { class: "queue-item " + q.status },
      el("span", { class: "q-title" }, q.order_id + " / " + q.op_no + "  ·  "
                                       + fmtNum(q.good) + " / " + fmtNum(q.planned_qty)),
      button, el("span", { class: "q-sub" }, sub.join(" · ")));
  }));
}

async function act(path, body) {
  try {
    const res = await api("POST", BASE + path, body);
    render(res.station);
    toast(T.saved);
    return res;
  } catch (err) {
    toast(T.refused + ": " + err.message, true);
    return null;
  }
}

function focusRef() { return focusOp ? { order_id: focusOp.order_id, op_no: focusOp.op_no } : {}; }

// -- buttons -------------------------------------------------------------------------------------
$("btn-start").addEventListener("click", () => {
  const next = station && station.queue.find((q) => q.status === "ready");
  if (next) act("/start", { order_id: next.order_id, op_no: next.op_no });
});
$("btn-pause").addEventListener("click", () => act("/pause", focusRef()));
$("btn-resume").addEventListener("click", () => act("/resume", focusRef()));
$("btn-complete").addEventListener("click", () => {
  const dlg = $("confirm-dialog");
  dlg.returnValue = "";
  dlg.showModal();
  dlg.addEventListener("close", () => {
    if (dlg.returnValue === "yes") act("/complete", focusRef());
  }, { once: true });
});

// -- report dialog ------------------------------------------------------------------------------
function openReport() {
  if (!focusOp) return;
  $("report-op").textContent = focusOp.order_id + " / " + focusOp.op_no;
  $("rep-good").value = 0;
  $("rep-scrap").value = 0;
  scrapReason = null;
  $("report-error").hidden = true;
  $("scrap-reasons").replaceChildren(...station.scrap_reasons.map((r) => el("button", {
    class: "btn neutral", type: "button", "data-reason": r.code,
    onclick: (ev) => {
      scrapReason = r.code;
      $("report-error").hidden = true;
      for (const b of $("scrap-reasons").children) b.classList.toggle("selected", b === ev.currentTarget);
    },
  }, reasonText(r))));
  $("report-dialog").showModal();
}
$("btn-report").addEventListener("click", openReport);
for (const b of document.querySelectorAll(".step")) {
  b.addEventListener("click", () => {
    const input = $(b.dataset.target);
    input.value = Math.max(0, (parseInt(input.value, 10) || 0) + parseInt(b.dataset.delta, 10));
  });
}
$("report-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const good = parseInt($("rep-good").value, 10) || 0;
  const scrap = parseInt($("rep-scrap").value, 10) || 0;
  const err = $("report-error");
  if (scrap > 0 && !scrapReason) { err.textContent = T.pick_reason; err.hidden = false; return; }
  const body = { ...focusRef(), good, scrap: scrap > 0 ? { [scrapReason]: scrap } : {} };
  try {
    render((await api("POST", BASE + "/report", body)).station);
    $("report-dialog").close();
    toast(T.saved);
  } catch (e) { err.textContent = T.refused + ": " + e.message; err.hidden = false; }
});

// -- operator sign-in ----------------------------------------------------------------------------
$("operator").addEventListener("click", () => {
  $("login-badge").value = "";
  $("login-pin").value = "";
  $("login-error").hidden = true;
  $("logout-btn").hidden = !(station && station.operator);
  $("login-dialog").showModal();
  $("login-badge").focus();
});
$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const badge = $("login-badge").value.trim();
  const pin = $("login-pin").value.trim();
  if (!badge) return;
  try {
    const res = await api("POST", BASE + "/login", pin ? { badge, pin } : { badge });
    render(res.station);
    $("login-dialog").close();
    toast(res.station.operator ? res.station.operator.name : T.saved);
  } catch (e) { $("login-error").textContent = e.message; $("login-error").hidden = false; }
});
$("logout-btn").addEventListener("click", async () => {
  await act("/logout");
  $("login-dialog").close();
});
for (const b of document.querySelectorAll("[data-close]")) {
  b.addEventListener("click", () => b.closest("dialog").close());
}

// -- scanner: a USB scanner types the code and Enter into whatever has focus -------------------------
const scan = $("scan");
scan.addEventListener("keydown", async (ev) => {
  if (ev.key !== "Enter") return;
  const code = scan.value.trim();
  scan.value = "";
  if (!code) return;
  const res = await act("/scan", { code });
  if (res && res.outcome === "logged_in" && res.station.operator) toast(res.station.operator.name);
});
document.addEventListener("keydown", (ev) => {
  const busy = document.querySelector("dialog[open]") || ["INPUT", "TEXTAREA"].includes(
    document.activeElement && document.activeElement.tagName);
  if (!busy && ev.key.length === 1 && !ev.ctrlKey && !ev.metaKey && !ev.altKey) scan.focus();
});

// -- live updates ----------------------------------------------------------------------------------
function onLive(msg) {
  if (msg.type !== "station") return;
  renderMachine(msg.machine_state, station && station.since);
  const cur = msg.current;
  if (cur && focusOp && cur.order_id === focusOp.order_id && cur.op_no === focusOp.op_no) {
    Object.assign(focusOp, { good: cur.good, scrap: cur.scrap, planned_qty: cur.planned_qty,
                             available: cur.available });
    renderCurrent(focusOp);  // the big numbers move at once; the queue follows the re-fetch
  }
  refresh();
}

new LiveStream(BASE + "/events", { onMessage: onLive, onOpen: refresh, indicator: $("conn") });
refresh();
setInterval(refresh, 30000);  // a safety net behind the stream
