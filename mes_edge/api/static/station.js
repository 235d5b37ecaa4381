// The station tablet: current operation with live counts, queue, commands, reports, downtime
// reasons, scans and operator sign-in. Data from /api/v1/stations/<wc>, live via SSE. Taps that
// change production go through the outbox (live.js): kept and resent while the MES is away.
"use strict";

const CFG = JSON.parse(document.getElementById("config").textContent);
const BASE = "/api/v1/stations/" + encodeURIComponent(CFG.workCenter);
const $ = (id) => document.getElementById(id);
let station = null;
let focusOp = null;  // the running operation, else the first paused one
let scrapReason = null;
let clockSkewMs = 0;  // server clock minus ours, to age open downtimes like the server does

function reasonText(r) {
  const zh = LANG === "zh" && r.text ? (r.text["zh-CN"] || r.text["zh-Hans"]) : null;
  return (r.text && (r.text[LANG] || zh || r.text.en)) || r.code;
}
function reasonLabel(code) {
  const r = station && station.downtime_reasons.find((x) => x.code === code);
  return r ? reasonText(r) : code;
}

function toast(text, kind = "ok") {
  const t = $("toast");
  t.textContent = text;
  t.className = "toast " + kind;
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, kind === "ok" ? 2500 : 8000);
}

const refresh = coalesced(async () => render(await api("GET", BASE)));

function render(st) {
  station = st;
  clockSkewMs = Date.parse(st.server_time) - Date.now();
  renderMachine(st.machine_state, st.since);
  const op = $("operator");
  op.classList.toggle("missing", !st.operator);
  $("operator-name").textContent = st.operator ? st.operator.name : T.no_operator;
  renderDowntime();
  renderUnassigned(st.unassigned);
  focusOp = st.current || st.queue.find((q) => q.status === "paused") || null;
  renderCurrent(focusOp);
  renderButtons(st);
  if (queuePageNo > 0) loadQueuePage();  // a later page: fetched again, shown when here
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

// -- downtime reasons: only for stops longer than the micro-stop threshold, never while running --
function stopSeconds(d) {
  const end = d.end ? Date.parse(d.end) : Date.now() + clockSkewMs;
  return (end - Date.parse(d.start)) / 1000;
}
// Stops wholly in a break or outside the shift cost nothing and need no reason (progress.js
// tells which, from the shift calendar).
let outsidePlan = new Set();
document.addEventListener("shift-progress", (ev) => {
  outsidePlan = new Set(ev.detail.timeline.filter((s) => s.downtime_id && !s.in_planned_time)
                          .map((s) => s.downtime_id));
  renderDowntime();
});
function needsReason(d) {
  return !d.reason && stopSeconds(d) >= station.micro_stop_s && !outsidePlan.has(d.downtime_id);
}

// The reason tree (category -> reason) of the plant file, read once; until it is here (or when
// the plant has no categories) the reasons are one flat row.
let reasonTree = null;
api("GET", "/api/v1/downtime-reasons").then((tree) => {
  reasonTree = tree;
  delete $("downtime").dataset.downtime;  // redraw an open prompt as the tree
  renderDowntime();
}, () => { /* the flat list meanwhile */ });

// Category buttons first; a tap on one shows its reasons (and Back) in the same row.
function reasonPicker(pick, reasonClass = "btn neutral") {
  const leaf = (r) => el("button", { class: reasonClass, type: "button", "data-reason": r.code,
                                     onclick: () => pick(r) }, reasonText(r));
  if (!reasonTree || !reasonTree.categories.some((c) => c.reasons.length)) {
    return station.downtime_reasons.map(leaf);
  }
  const top = () => [
    ...reasonTree.categories.filter((c) => c.reasons.length).map((c) => el("button", {
      class: "btn primary category", type: "button", "data-category": c.code,
      onclick: (ev) => {
        const row = ev.currentTarget.parentElement;
        row.replaceChildren(el("button", { class: "btn ghost", type: "button", "data-back": "",
                                           onclick: () => row.replaceChildren(...top()) },
                               "‹ " + reasonText(c)), ...c.reasons.map(leaf));
      },
    }, reasonText(c) + " ›")),
    ...reasonTree.uncategorised.map(leaf)];
  return top();
}

function reasonButtons(downtime, after) {
  return reasonPicker(async (r) => {
    const ok = await send("/downtime-reason", { reason: r.code, downtime_id: downtime.downtime_id },
                          T["action_downtime-reason"] + " " + reasonText(r));
    if (after) after(ok);
  });
}

function renderDowntime() {
  const st = station;
  if (!st) return;
  const due = st.downtime_reasons.length ? st.downtimes.filter(needsReason) : [];
  const running = st.machine_state === "running";
  const ask = running ? null : (due.find((d) => d.open) || due[0] || null);
  const box = $("downtime");
  const shown = box.hidden ? null : box.dataset.downtime;
  box.hidden = !ask;
  // While the machine runs, stops still waiting for a reason wait quietly behind a chip.
  const later = due.filter((d) => d !== ask);
  $("stops-missing").hidden = later.length === 0;
  $("stops-missing-count").textContent = later.length;
  if (!ask) return;
  $("downtime-title").textContent = (ask.open ? T.machine_stopped : T.no_reason) + " · "
                                    + stateText(ask.state);
  $("downtime-since").textContent = T.since + " " + fmtTime(ask.start);
  if (shown !== ask.downtime_id) {  // keep the buttons under the operator's finger
    box.dataset.downtime = ask.downtime_id;
    $("downtime-reasons").replaceChildren(...reasonButtons(ask));
  }
}
setInterval(renderDowntime, 1000);  // an open stop becomes a downtime once it passes the threshold

$("stops-missing").addEventListener("click", () => {
  const due = station.downtimes.filter(needsReason);
  $("stops-list").replaceChildren(...due.map((d) => el("div", { class: "stop" },
    el("div", { class: "stop-head" }, stateText(d.state) + " · " + fmtTime(d.start) + " · "
                                      + Math.round(stopSeconds(d)) + " s"),
    el("div", { class: "reason-row" }, ...reasonButtons(d, () => $("stops-dialog").close())))));
  $("stops-dialog").showModal();
});

function renderUnassigned(u) {
  const chip = $("unassigned");
  chip.hidden = !u;
  if (!u) return;
  const scrap = Object.values(u.scrap || {}).reduce((a, b) => a + b, 0);
  const parts = [T.good + " " + fmtNum(u.good)];
  if (scrap) parts.push(T.scrap + " " + fmtNum(scrap));
  if (u.rework) parts.push(T.rework + " " + fmtNum(u.rework));
  if (u.since) parts.push(T.since + " " + fmtTime(u.since));
  $("unassigned-text").textContent = parts.join(" · ");
}

// -- current operation, buttons, queue ------------------------------------------------------------
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

function flagPills(op) {
  const out = [];
  if (op.over_produced) out.push(el("span", { class: "pill flag", "data-flag": "over_produced" },
                                    T.over_produced + " +" + fmtNum(op.over_produced)));
  if (op.beyond_handover) out.push(el("span", { class: "pill flag", "data-flag": "beyond_handover" },
                                      T.beyond_handover + " +" + fmtNum(op.beyond_handover)));
  return out;
}

function renderCurrent(op) {
  $("current-empty").hidden = !!op;
  $("current-body").hidden = !op;
  const pill = $("current-status");
  pill.hidden = !op;
  $("cur-flags").replaceChildren(...(op ? flagPills(op) : []));
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

// The station view brings the first QUEUE_PAGE operations of the queue and its length
// (queue_total); further pages come from GET .../queue?offset=&limit= while one is shown. Pages
// are slices of the queue; the operation shown as current (always the queue's first, running or
// paused) is left out of the list, so the numbers count what the list shows.
const QUEUE_PAGE = 50;
const QUEUE_BACK_MS = 120000;  // an untouched later page goes back to the first one
let queuePageNo = 0;
let queuePage = null;  // { no, items } of the page shown when it is not the first
let queueBackTimer = null;

const loadQueuePage = coalesced(async () => {
  const no = queuePageNo;
  if (no === 0) { queuePage = null; renderQueue(station); return; }
  const items = await api("GET", BASE + "/queue?offset=" + no * QUEUE_PAGE + "&limit=" + QUEUE_PAGE);
  if (no !== queuePageNo) { loadQueuePage(); return; }
  queuePage = { no, items };
  renderQueue(station);
}, 0);

function showQueuePage(no) {
  queuePageNo = Math.max(0, no);
  clearTimeout(queueBackTimer);
  if (queuePageNo > 0) queueBackTimer = setTimeout(() => showQueuePage(0), QUEUE_BACK_MS);
  $("queue").parentElement.scrollTop = 0;
  loadQueuePage();
}
$("queue-prev").addEventListener("click", () => showQueuePage(queuePageNo - 1));
$("queue-next").addEventListener("click", () => showQueuePage(queuePageNo + 1));

function queueShown(st) {
  const total = st.queue_total ?? st.queue.length;
  const lastNo = Math.max(0, Math.ceil(total / QUEUE_PAGE) - 1);
  if (queuePageNo > lastNo) { showQueuePage(lastNo); }  // the queue got shorter
  const first = st.queue[0];
  const skip = first && focusOp && first.order_id === focusOp.order_id
               && first.op_no === focusOp.op_no ? 1 : 0;
  let items = skip ? st.queue.slice(1) : st.queue;
  let start = 0;  // position (in what the list shows) of the page's first item
  if (queuePageNo > 0) {
    if (!queuePage || queuePage.no !== queuePageNo) return null;  // still loading
    items = queuePage.items;
    start = queuePageNo * QUEUE_PAGE - skip;
  }
  return { items, start, total: total - skip, paged: total > QUEUE_PAGE };
}

function renderQueue(st) {
  const shown = queueShown(st);
  if (!shown) return;
  const { items, start, total, paged } = shown;
  $("queue-count").textContent = paged && items.length
    ? fill(T.queue_range, { first: fmtNum(start + 1), last: fmtNum(start + items.length),
                            total: fmtNum(total) })
    : fmtNum(items.length);
  $("queue-pager").hidden = !paged;
  $("queue-prev").disabled = queuePageNo === 0;
  $("queue-next").disabled = (queuePageNo + 1) * QUEUE_PAGE >= (st.queue_total ?? 0);
  $("queue-empty").hidden = items.length > 0;
  $("queue").replaceChildren(...items.map((q) => {
    const ref = { order_id: q.order_id, op_no: q.op_no };
    let button = null;
    if (q.status === "ready" && !st.current) {
      button = el("button", { class: "btn go", type: "button",
                              onclick: () => send("/start", ref, label("start", ref)) }, T.start);
    } else if (q.status === "paused" && !st.current) {
      button = el("button", { class: "btn go", type: "button",
                              onclick: () => send("/resume", ref, label("resume", ref)) }, T.resume);
    }
    const sub = [q.material, opStatusText(q.status), T.available + " " + fmtNum(q.available)];
    if (q.due) sub.push(T.due + " " + fmtTime(q.due));
    return el("li", { class: "queue-item " + q.status },
      el("span", { class: "q-title" }, q.order_id + " / " + q.op_no + "  ·  "
                                       + fmtNum(q.good) + " / " + fmtNum(q.planned_qty)),
      button, el("span", { class: "q-sub" }, sub.join(" · "), ...flagPills(q)));
  }));
}

// -- sending taps ----------------------------------------------------------------------------------
const outbox = new Outbox(CFG.workCenter, {
  onAnswer: (item, answer) => settle(answer, item.label, true),
  onChange: renderNet,
});

function label(action, ref) {
  return T["action_" + action] + (ref && ref.order_id ? " " + ref.order_id + " / " + ref.op_no : "");
}

function settle(answer, what, queued) {
  if (answer.full) { toast(T.outbox_full, "error"); return null; }
  if (answer.ok) {
    if (answer.ok.station) render(answer.ok.station);
    toast(queued ? fill(T.sent_later, { label: what }) : T.saved);
    return answer.ok;
  }
  toast((queued ? what + ": " : "") + refusalText(answer.refused), "error");
  refresh();
  return null;
}

// A production tap: sent now, or kept and resent until the MES answers. `onQueued` runs when it
// could not be delivered at once (the page may move on: it is not lost).
async function send(path, body, what, onQueued) {
  let queued = false;
  const answer = await outbox.send(BASE + path, body, what, (problem) => {
    queued = true;
    toast(problem === "storage" ? T.not_saved : T.not_sent, "pending");
    if (onQueued) onQueued();
  });
  return settle(answer, what, queued);
}

function renderNet() {
  const problem = !Net.online ? "offline" : outbox.problem;
  document.body.classList.toggle("is-offline", problem === "offline");
  const banner = $("offline");
  banner.hidden = !problem;
  banner.className = "offline " + (problem || "");
  $("offline-title").textContent = problem === "storage" ? T.storage_title : T.offline_title;
  $("offline-text").textContent = problem === "storage" ? T.storage_text : T.offline_text;
  $("offline-pending").textContent = outbox.size ? fill(T.pending, { n: outbox.size }) : "";
  if (problem === "offline") {  // the stream may not have noticed yet: never show "Live" then
    $("conn").classList.replace("on", "off");
    $("conn-text").textContent = T.reconnecting;
  }
  // Signing in and scanning need the MES to answer now: they cannot wait in the outbox.
  for (const id of ["operator", "scan"]) {
    $(id).disabled = problem === "offline";
    $(id).title = problem === "offline" ? T.needs_connection : "";
  }
}
Net.onChange(() => {
  renderNet();
  if (Net.online) { outbox.pump(); refresh(); }
});

// The browser knows when the tablet itself lost its network: no need to wait for a tap.
window.addEventListener("offline", () => Net.set(false));
window.addEventListener("online", () => { outbox.pump(); refresh(); });

function focusRef() { return focusOp ? { order_id: focusOp.order_id, op_no: focusOp.op_no } : {}; }

// -- buttons -------------------------------------------------------------------------------------
$("btn-start").addEventListener("click", () => {
  const next = station && station.queue.find((q) => q.status === "ready");
  if (next) {
    const ref = { order_id: next.order_id, op_no: next.op_no };
    send("/start", ref, label("start", ref));
  }
});
$("btn-pause").addEventListener("click", () => {
  const ref = focusRef();
  if (!station.downtime_reasons.length) { send("/pause", ref, label("pause", ref)); return; }
  // As a terminal does: a pause asks why (an operator-counted station has no PLC to tell).
  $("pause-op").textContent = ref.order_id ? ref.order_id + " / " + ref.op_no : "";
  $("pause-plain").hidden = CFG.counting === "operator";
  $("pause-reasons").replaceChildren(...reasonPicker((r) => {
    $("pause-dialog").close();
    send("/pause", { ...ref, reason: r.code }, label("pause", ref) + " · " + reasonText(r));
  }));
  $("pause-dialog").showModal();
});
$("pause-plain").addEventListener("click", () => {
  $("pause-dialog").close();
  const ref = focusRef();
  send("/pause", ref, label("pause", ref));
});
$("btn-resume").addEventListener("click", () => send("/resume", focusRef(),
                                                    label("resume", focusRef())));
$("btn-complete").addEventListener("click", () => {
  const dlg = $("confirm-dialog");
  dlg.returnValue = "";
  dlg.showModal();
  dlg.addEventListener("close", () => {
    if (dlg.returnValue === "yes") send("/complete", focusRef(), label("complete", focusRef()));
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
  const fail = (text) => { err.textContent = text; err.hidden = false; };
  if (scrap > 0 && !scrapReason) { fail(T.pick_reason); return; }
  if (good <= 0 && scrap <= 0) { fail(T.nothing_to_report); return; }
  const ref = focusRef();
  const body = { ...ref, good, scrap: scrap > 0 ? { [scrapReason]: scrap } : {} };
  const what = label("report", ref) + " · " + T.good + " " + good
               + (scrap ? " · " + T.scrap + " " + scrap : "");
  let queued = false;
  const answer = await outbox.send(BASE + "/report", body, what, (problem) => {
    queued = true;
    $("report-dialog").close();  // kept on the tablet: the operator may go on
    toast(problem === "storage" ? T.not_saved : T.not_sent, "pending");
  });
  if (answer.refused && !queued) { fail(refusalText(answer.refused)); return; }
  if (!queued) $("report-dialog").close();
  settle(answer, what, queued);
});

// -- operator sign-in (needs the MES now: never queued) -------------------------------------------
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
  } catch (e) { $("login-error").textContent = refusalText(e); $("login-error").hidden = false; }
});
$("logout-btn").addEventListener("click", async () => {
  try {
    render((await api("POST", BASE + "/logout")).station);
    $("login-dialog").close();
  } catch (e) { $("login-error").textContent = refusalText(e); $("login-error").hidden = false; }
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
  try {
    const res = await api("POST", BASE + "/scan", { code });
    render(res.station);
    toast(res.outcome === "logged_in" && res.station.operator ? res.station.operator.name
                                                               : T.saved);
  } catch (e) { toast(refusalText(e), "error"); }
});
document.addEventListener("keydown", (ev) => {
  const busy = document.querySelector("dialog[open]") || ["INPUT", "TEXTAREA"].includes(
    document.activeElement && document.activeElement.tagName);
  if (!busy && !scan.disabled && ev.key.length === 1 && !ev.ctrlKey && !ev.metaKey && !ev.altKey) {
    scan.focus();
  }
});

// -- live updates ----------------------------------------------------------------------------------
function onLive(msg) {
  if (msg.type !== "station") return;
  renderMachine(msg.machine_state, station && station.since);
  if (station) { station.machine_state = msg.machine_state; renderDowntime(); }
  const cur = msg.current;
  if (cur && focusOp && cur.order_id === focusOp.order_id && cur.op_no === focusOp.op_no) {
    Object.assign(focusOp, { good: cur.good, scrap: cur.scrap, planned_qty: cur.planned_qty,
                             available: cur.available });
    renderCurrent(focusOp);  // the big numbers move at once; the queue follows the re-fetch
  }
  refresh();
}

// A dropped stream may mean the MES is away: a read tells (and lights the offline banner).
new LiveStream(BASE + "/events", { onMessage: onLive, onOpen: refresh, onError: refresh,
                                   indicator: $("conn") });
renderNet();
refresh();
setInterval(refresh, 30000);  // a safety net behind the stream
setInterval(() => { if (!Net.online) refresh(); }, 5000);  // notice quickly when it is back
