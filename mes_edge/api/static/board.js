// The supervisor board: work-center tiles, WIP, late and stalled operations, rejected events.
"use strict";

const $ = (id) => document.getElementById(id);

function tile(w) {
  const cur = w.current;
  const parts = [
    el("div", { class: "t-head" }, el("span", { class: "t-id" }, w.work_center),
       el("span", { class: "t-state" }, w.machine_state === "unknown" && w.counting === "operator"
                                         ? "" : stateText(w.machine_state))),
    el("div", { class: "t-sub" }, w.name + (w.operator ? " · " + w.operator : "")),
  ];
  if (cur) {
    parts.push(el("div", { class: "t-op" }, cur.order_id + " / " + cur.op_no + " · " + cur.material));
    parts.push(el("div", { class: "t-counts" },
                  el("span", { class: "g" }, fmtNum(cur.good)), el("small", {}, T.good),
                  el("span", { class: "s" }, fmtNum(cur.scrap)), el("small", {}, T.scrap),
                  el("span", { class: "p" }, "/ " + fmtNum(cur.planned_qty))));
  } else {
    parts.push(el("div", { class: "t-op muted" }, T.no_operation));
  }
  if (w.unassigned) {
    parts.push(el("div", { class: "t-alert warn" }, T.unassigned + ": " + fmtNum(w.unassigned.good)
      + " " + T.good + (scrapTotal(w.unassigned) ? " · " + fmtNum(scrapTotal(w.unassigned)) + " "
      + T.scrap : "") + " · " + T.since + " " + fmtTime(w.unassigned.since)));
  }
  if (cur && (cur.over_produced || cur.beyond_handover)) parts.push(el("div", { class: "t-flags" }, ...flags(cur)));
  // Like the tablet: a stop asks for a reason once it outlasts the work center's micro-stop time.
  const stopS = w.open_downtime ? (Date.parse(board.generated_at) - Date.parse(w.open_downtime.start)) / 1000 : 0;
  if (w.open_downtime && !w.open_downtime.reason && stopS >= w.micro_stop_s) {
    parts.push(el("div", { class: "t-alert" }, T.no_reason + " · " + T.since + " "
                                               + fmtTime(w.open_downtime.start)));
  }
  parts.push(el("div", { class: "t-sub" }, fmtNum(w.queue_length) + " " + T.in_queue));
  return el("article", { class: "tile state-" + w.machine_state, "data-wc": w.work_center }, ...parts);
}

function flags(i) {
  const out = [];
  if (i.over_produced) out.push(el("span", { class: "pill flag" }, T.over_produced + " +" + fmtNum(i.over_produced)));
  if (i.beyond_handover) out.push(el("span", { class: "pill flag" }, T.beyond_handover + " +" + fmtNum(i.beyond_handover)));
  return out;
}

function scrapTotal(u) { return Object.values(u.scrap || {}).reduce((a, b) => a + b, 0); }

// -- unassigned production: a supervisor assigns it to an operation or writes it off ------------
let board = null;
let uaTarget = null;  // { wc, verb: "assign" | "write-off", open }

function openUnassigned(w, verb) {
  uaTarget = { wc: w.work_center, verb, open: w.unassigned };
  $("ua-verb").textContent = verb === "assign" ? T.assign : T.write_off;
  $("ua-wc").textContent = w.work_center;
  $("ua-op-field").hidden = verb !== "assign";
  $("ua-op").replaceChildren();
  // The operations open at the work center, asked of the server (the WIP table is paged).
  api("GET", "/api/v1/board/wip?limit=500&work_center=" + encodeURIComponent(w.work_center))
    .then((page) => $("ua-op").replaceChildren(...page.items
      .filter((i) => !["completed", "cancelled"].includes(i.status))
      .map((i) => el("option", { value: i.order_id + "\n" + i.op_no },
        i.order_id + " / " + i.op_no + " · " + opStatusText(i.status)))));
  $("ua-good").value = w.unassigned.good;
  $("ua-rework").value = w.unassigned.rework;
  $("ua-scrap").replaceChildren(...Object.entries(w.unassigned.scrap || {}).map(([r, q]) =>
    el("label", { class: "field" }, el("span", {}, T.scrap + " · " + r),
       el("input", { type: "number", min: "0", value: q, "data-reason": r }))));
  $("ua-reason").value = "";
  $("ua-error").hidden = true;
  $("ua-dialog").showModal();
}

$("ua-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const num = (id) => Math.max(0, parseInt($(id).value, 10) || 0);
  const scrap = {};
  for (const input of $("ua-scrap").querySelectorAll("input")) {
    const q = Math.max(0, parseInt(input.value, 10) || 0);
    if (q) scrap[input.dataset.reason] = q;
  }
  const body = { good: num("ua-good"), scrap, rework: num("ua-rework"),
                 reason: $("ua-reason").value.trim() };
  if (uaTarget.verb === "assign") {
    const [order_id, op_no] = ($("ua-op").value || "\n").split("\n");
    Object.assign(body, { order_id, op_no });
  }
  try {
    await api("POST", "/api/v1/production/unassigned/" + encodeURIComponent(uaTarget.wc) + "/"
                      + uaTarget.verb, body);
    $("ua-dialog").close();
    refresh();
  } catch (err) {
    $("ua-error").textContent = refusalText(err);
    $("ua-error").hidden = false;
  }
});
for (const b of document.querySelectorAll("[data-close]")) {
  b.addEventListener("click", () => b.closest("dialog").close());
}

function renderUnassigned(b) {
  const open = b.work_centers.filter((w) => w.unassigned);
  $("unassigned-section").hidden = open.length === 0;
  $("unassigned").replaceChildren(...open.map((w) => el("tr", { "data-wc": w.work_center },
    el("td", {}, w.work_center), el("td", { class: "num" }, fmtNum(w.unassigned.good)),
    el("td", { class: "num" }, fmtNum(scrapTotal(w.unassigned))),
    el("td", { class: "num" }, fmtNum(w.unassigned.rework)),
    el("td", {}, fmtTime(w.unassigned.since) + (w.unassigned.last ? " – " + fmtTime(w.unassigned.last) : "")),
    el("td", { class: "ua-actions" },
       el("button", { class: "btn neutral small", type: "button", "data-verb": "assign",
                      onclick: () => openUnassigned(w, "assign") }, T.assign),
       el("button", { class: "btn ghost small", type: "button", "data-verb": "write-off",
                      onclick: () => openUnassigned(w, "write-off") }, T.write_off)))));
}

// -- confirmations the ERP refused (push mode): a supervisor retries or skips each -----------
async function resolveDelivery(d, verb) {
  let body = {};
  if (verb === "skip") {
    const reason = window.prompt(T.skip_reason);
    if (!reason) return;
    body = { reason };
  }
  try {
    await api("POST", "/api/v1/confirmations/" + encodeURIComponent(d.confirmation_id) + "/"
              + verb, body);
  } catch (err) {
    const t = $("toast");
    t.textContent = refusalText(err);
    t.hidden = false;
    setTimeout(() => { t.hidden = true; }, 6000);
  }
  refresh();
}

function renderDeliveries(b) {
  const errors = b.delivery_errors || [];
  $("delivery-section").hidden = errors.length === 0;
  $("delivery-errors").replaceChildren(...errors.map((d) => el("li", { "data-id": d.confirmation_id },
    el("span", { class: "code" }, String(d.http_status || "error")),
    d.order_id + " / " + d.operation + " · " + d.work_center + " · " + fmtNum(d["yield"] ?? d.yield_qty) + " "
      + T.good,
    el("div", { class: "muted" }, d.message || ""),
    el("div", { class: "ua-actions" },
       el("button", { class: "btn neutral small", type: "button", "data-verb": "retry",
                      onclick: () => resolveDelivery(d, "retry") }, T.retry),
       el("button", { class: "btn ghost small", type: "button", "data-verb": "skip",
                      onclick: () => resolveDelivery(d, "skip") }, T.skip)))));
}

// -- the WIP table: one page at a time, filtered and sorted by the server ----------------------
const WIP_PAGE = 50;
const wipQuery = { work_center: "", status: "", sort: "order", offset: 0 };
const OP_STATUSES = ["running", "paused", "ready", "waiting", "on_hold", "completed", "cancelled"];

function wipPath() {
  const q = new URLSearchParams({ limit: WIP_PAGE, offset: wipQuery.offset, sort: wipQuery.sort });
  if (wipQuery.work_center) q.set("work_center", wipQuery.work_center);
  if (wipQuery.status) q.set("status", wipQuery.status);
  return "/api/v1/board/wip?" + q.toString();
}

function renderWip(page, now) {
  const isLate = (i) => i.due && Date.parse(i.due) < now
                        && !["completed", "cancelled"].includes(i.status);
  $("wip").replaceChildren(...page.items.map((i) => el("tr", { class: isLate(i) ? "late" : "" },
    el("td", {}, i.order_id), el("td", {}, i.op_no), el("td", {}, i.work_center),
    el("td", {}, el("span", { class: "pill " + i.status }, opStatusText(i.status)), ...flags(i)),
    el("td", { class: "num" }, fmtNum(i.good)), el("td", { class: "num" }, fmtNum(i.scrap)),
    el("td", { class: "num" }, fmtNum(i.planned_qty)), el("td", { class: "num" }, fmtNum(i.available)),
    el("td", {}, fmtTime(i.due)))));
  const last = Math.min(page.offset + page.items.length, page.total);
  $("wip-range").textContent = (page.total ? fmtNum(page.offset + 1) : "0") + "–" + fmtNum(last)
    + " / " + fmtNum(page.total);
  $("wip-prev").disabled = page.offset <= 0;
  $("wip-next").disabled = last >= page.total;
}

function wipFilters(b) {
  const wc = $("wip-wc");
  if (wc.options.length === 1) {
    wc.append(...b.work_centers.map((w) => el("option", { value: w.work_center }, w.work_center)));
    $("wip-status").append(...OP_STATUSES.map((s) => el("option", { value: s }, opStatusText(s))));
  }
}

function setWip(changes) {
  Object.assign(wipQuery, changes);
  refresh();
}
$("wip-wc").addEventListener("change", (e) => setWip({ work_center: e.target.value, offset: 0 }));
$("wip-status").addEventListener("change", (e) => setWip({ status: e.target.value, offset: 0 }));
$("wip-late-first").addEventListener("change",
  (e) => setWip({ sort: e.target.checked ? "due" : "order", offset: 0 }));
$("wip-prev").addEventListener("click", () => setWip({ offset: Math.max(0, wipQuery.offset - WIP_PAGE) }));
$("wip-next").addEventListener("click", () => setWip({ offset: wipQuery.offset + WIP_PAGE }));

function render(b, page) {
  board = b;
  $("updated").textContent = fmtTime(b.generated_at);
  renderUnassigned(b);
  renderDeliveries(b);
  wipFilters(b);
  $("tiles").replaceChildren(...b.work_centers.map(tile));
  renderWip(page, Date.parse(b.generated_at));
  const attention = [...b.stalled, ...b.late];
  $("attention").replaceChildren(...(attention.length ? attention.map((a) => el("li",
    { class: a.why === "stalled" ? "stalled" : "" },
    el("span", { class: "why" }, a.why === "stalled" ? T.stalled : T[a.why]),
    el("span", { class: "what" }, a.order_id + " / " + a.op_no), " · " + a.work_center,
    el("div", { class: "muted" }, a.why === "stalled"
      ? fmtNum(a.minutes_idle) + " " + T.min_idle
      : T.due + " " + fmtTime(a.due) + (a.projected_finish ? " · " + T.finish + " "
                                                           + fmtTime(a.projected_finish) : ""))))
    : [el("li", { class: "muted" }, T.none)]));
  $("rejected").replaceChildren(...(b.rejected.length ? b.rejected.map((r) => el("li", {},
    el("span", { class: "code" }, r.reason_code), r.reason,
    el("span", { class: "src" }, fmtTime(r.rejected_at) + " · " + (r.work_center || "–") + " · "
                                 + r.source + (r.actor ? " · " + r.actor : ""))))
    : [el("li", { class: "muted" }, T.none)]));
}

// The board's summary (tiles, late, stalled, rejections) and the page of WIP shown: what a
// change costs does not grow with the number of orders.
const refresh = coalesced(async () => {
  const [b, page] = await Promise.all([api("GET", "/api/v1/board?wip_limit=0"),
                                       api("GET", wipPath())]);
  render(b, page);
}, 500);
new LiveStream("/api/v1/board/events", { onMessage: refresh, onOpen: refresh, indicator: $("conn") });
refresh();
setInterval(refresh, 30000);  // late / stalled also change with the clock alone
