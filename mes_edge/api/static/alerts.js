// Active alerts of the board (all work centers) or of one station, acknowledgeable here.
// Uses live.js (T, api, fill, fmtTime). Polls GET /api/v1/alerts?active=true every few seconds.
(function () {
  const section = document.getElementById("alerts-section");
  if (!section) return;
  const wc = section.dataset.workCenter;
  const list = document.getElementById("alerts");
  const empty = document.getElementById("alerts-empty");
  const count = document.getElementById("alerts-count");
  const EVERY_MS = 5000;

  // Who saw it, where and when: "seen by Li Wei (B-17) at PRESS-01, 10:05" (a badge reads as
  // the operator's name with the badge; the station only when acknowledged on a tablet).
  function seen(a) {
    const name = a.acked_by_name || a.acked_by;
    const who = name && name !== a.acked_by ? `${name} (${a.acked_by})` : a.acked_by;
    const values = { who, station: a.acked_station, when: fmtTime(a.acked_at) };
    return fill(a.acked_station ? T.alert_acked_at_station : T.alert_acked_by, values);
  }

  function text(a) {
    const d = a.details || {};
    const template = T["alert_" + a.kind];
    return template ? fill(template, { ...d, work_center: a.work_center, subject: a.subject })
      : a.message;
  }

  const RANK = { error: 0, warning: 1, info: 2 };

  function render(alerts) {
    // Most severe first (an escalated alert moves up), newest first within a severity.
    alerts = alerts.slice().sort((x, y) => (RANK[x.severity] ?? 3) - (RANK[y.severity] ?? 3));
    list.replaceChildren();
    count.textContent = String(alerts.length);
    empty.hidden = alerts.length > 0;
    for (const a of alerts) {
      const li = document.createElement("li");
      li.className = "alert-item sev-" + a.severity + (a.acked_at ? " acked" : "")
        + (a.escalated_at ? " escalated" : "");
      li.dataset.kind = a.kind;
      li.title = a.message;
      const head = document.createElement("span");
      head.className = "alert-head";
      head.textContent = (a.work_center ? a.work_center + " · " : "") + (T["kind_" + a.kind] || a.kind);
      const body = document.createElement("span");
      body.className = "alert-text";
      body.textContent = text(a);
      const when = document.createElement("span");
      when.className = "alert-when muted";
      when.textContent = T.alert_since + " " + fmtTime(a.raised_at)
        + (a.escalated_at ? " · " + fill(T.alert_escalated, { when: fmtTime(a.escalated_at) }) : "")
        + (a.acked_at ? " · " + seen(a) : "");
      li.append(head, body, when);
      if (!a.acked_at) {
        const btn = document.createElement("button");
        btn.type = "button";
        btn.className = "btn ghost small";
        btn.textContent = T.acknowledge;
        btn.addEventListener("click", async () => {
          btn.disabled = true;
          try { await api("POST", `/api/v1/alerts/${a.id}/ack`); } catch (err) { btn.disabled = false; }
          refresh();
        });
        li.append(btn);
      }
      list.append(li);
    }
  }

  async function refresh() {
    const q = new URLSearchParams({ active: "true" });
    if (wc) q.set("work_center", wc);
    try { render(await api("GET", "/api/v1/alerts?" + q.toString())); } catch (err) { /* offline: keep */ }
  }

  refresh();
  setInterval(refresh, EVERY_MS);
})();
