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
  if (w.open_downtime && !w.open_downtime.reason) {
    parts.push(el("div", { class: "t-alert" }, T.no_reason + " · " + T.since + " "
                                               + fmtTime(w.open_downtime.start)));
  }
  parts.push(el("div", { class: "t-sub" }, fmtNum(w.queue_length) + " " + T.in_queue));
  return el("article", { class: "tile state-" + w.machine_state, "data-wc": w.work_center }, ...parts);
}

function render(b) {
  $("updated").textContent = fmtTime(b.generated_at);
  $("tiles").replaceChildren(...b.work_centers.map(tile));
  const late = new Set(b.late.map((a) => a.order_id + "/" + a.op_no));
  $("wip").replaceChildren(...b.wip.map((i) => el("tr",
    { class: late.has(i.order_id + "/" + i.op_no) ? "late" : "" },
    el("td", {}, i.order_id), el("td", {}, i.op_no), el("td", {}, i.work_center),
    el("td", {}, el("span", { class: "pill " + i.status }, opStatusText(i.status))),
    el("td", { class: "num" }, fmtNum(i.good)), el("td", { class: "num" }, fmtNum(i.scrap)),
    el("td", { class: "num" }, fmtNum(i.planned_qty)), el("td", { class: "num" }, fmtNum(i.available)),
    el("td", {}, fmtTime(i.due)))));
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

const refresh = coalesced(async () => render(await api("GET", "/api/v1/board")), 500);
new LiveStream("/api/v1/board/events", { onMessage: refresh, onOpen: refresh, indicator: $("conn") });
refresh();
setInterval(refresh, 30000);  // late / stalled also change with the clock alone
