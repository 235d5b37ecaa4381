// Shift progress on the board (every work center) and on a station tablet (its own): A / P / Q /
// OEE of the running shift, good / scrap, downtime minutes, a state-timeline strip and (board) the
// top downtime reasons as a Pareto chart. Both charts are small SVGs drawn here: no library.
// Uses live.js (T, LANG, api, fill, fmtNum). Polls GET /api/v1/progress/shift.
(function () {
  "use strict";
  const section = document.getElementById("progress-section");
  if (!section) return;
  const wc = section.dataset.workCenter;
  const box = document.getElementById("progress");
  const EVERY_MS = 10000;
  const SVG = "http://www.w3.org/2000/svg";
  let hatches = 0;
  const COLOURS = {
    running: "#22c55e", idle: "#64748b", down: "#ef4444", setup: "#a78bfa", blocked: "#f59e0b",
    starved: "#fb923c", unknown: "#334155", micro: "#f9a8d4", brk: "#1e3a8a",
  };
  const LOSS_COLOURS = { breakdown: "#ef4444", setup: "#a78bfa", material: "#fb923c",
                         quality: "#f59e0b", planned: "#60a5fa", other: "#94a3b8" };

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return node;
  }
  function title(text) { return svg("title", {}, text); }

  // Plant-file texts: {en, zh-CN} (or zh); the page language first, English as fall-back.
  function pick(map, fallback) {
    if (!map) return fallback;
    const zh = LANG === "zh" ? (map.zh || map["zh-CN"] || map["zh-Hans"]) : null;
    return zh || map[LANG] || map.en || Object.values(map)[0] || fallback;
  }
  function reasonLabel(bar) {
    if (bar.reason === "*other") return T.other_reasons;
    if (bar.reason === null) return T.no_reason_given;
    return pick(bar.text, bar.reason);
  }
  function pct(v) { return v === null || v === undefined ? "–" : v.toFixed(1) + " %"; }
  function hhmm(ms) {
    return new Date(ms).toLocaleTimeString(LANG === "zh" ? "zh-CN" : "en-GB",
                                            { hour: "2-digit", minute: "2-digit" });
  }
  function minutes(m) { return (Math.round(m * 10) / 10).toLocaleString(LANG === "zh" ? "zh-CN" : "en-US"); }

  function kpi(cls, label, value, extra) {
    const node = el("div", { class: "pg-kpi " + cls, "data-kpi": cls }, el("span", { class: "k" }, label),
                    el("span", { class: "v" }, value));
    if (extra) { node.classList.add("over"); node.title = extra; }
    return node;
  }

  function shiftText(v) {
    if (!v.shift) return v.timeline.length || v.figures ? T.shift_today : T.shift_none;
    const s = v.shift;
    return s.name + " · " + (s.running ? T.shift_running : T.shift_last) + " · "
      + hhmm(Date.parse(s.start)) + "–" + hhmm(Date.parse(s.end));
  }

  // The shift's end; without a calendar the local day's (24 h: on DST days the tick is off by
  // the hour, never the figures).
  function end(v, lo) { return v.shift ? Date.parse(v.shift.end) : lo + 24 * 3600e3; }

  // The strip: the whole shift from start to end (the future stays empty), breaks behind, one
  // rectangle per state interval with its state, times and reason as the tooltip, a now mark.
  function timeline(v, now, height) {
    const W = 1000, H = height, top = 2, bar = H - 6;
    const lo = Date.parse(v.from);
    const hi = end(v, lo);
    const x = (t) => ((Math.min(Math.max(t, lo), hi) - lo) / (hi - lo)) * W;
    const root = svg("svg", { class: "pg-timeline", viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none",
                              role: "img", "aria-label": T.timeline, height: H });
    root.append(svg("rect", { x: 0, y: top, width: W, height: bar, fill: "#0d1117", rx: 3 }));
    const hatch = "pg-hatch-" + (++hatches);
    root.append(svg("defs", {}, svg("pattern", { id: hatch, width: 8, height: 8,
                                                 patternUnits: "userSpaceOnUse",
                                                 patternTransform: "rotate(45)" },
                                   svg("rect", { width: 4, height: 8, fill: "#93c5fd" }))));
    const breaks = [];
    for (const b of (v.shift && v.shift.breaks) || []) {
      const a = x(Date.parse(b.start)), e = x(Date.parse(b.end));
      breaks.push(svg("rect", { class: "brk", x: a, y: top, width: Math.max(e - a, 1), height: bar,
                                fill: `url(#${hatch})`, opacity: 0.55, "data-kind": b.kind },
                      title(T.planned_break + (b.name ? " " + b.name : "") + " · "
                            + hhmm(Date.parse(b.start)) + "–" + hhmm(Date.parse(b.end)))));
    }
    for (const s of v.timeline) {
      const a = Date.parse(s.start), e = s.open ? now : Date.parse(s.end);
      const colour = s.micro_stop ? COLOURS.micro : (COLOURS[s.state] || COLOURS.unknown);
      const mins = minutes((e - a) / 60000) + " " + T.minutes;
      let tip;
      if (s.merged > 1) {
        // Spans too short to see, merged by the server: what happened in them, largest first.
        const parts = Object.entries(s.seconds).sort((p, q) => q[1] - p[1])
          .map(([st, sec]) => stateText(st) + " " + minutes(sec / 60) + " " + T.minutes);
        let what = fill(T.spans_n, { n: s.merged });
        if (s.stops && s.stops === s.micro_stops) what = fill(T.micro_stops_n, { n: s.stops });
        else if (s.stops) {
          what = fill(T.stops_n, { n: s.stops })
            + (s.micro_stops ? " (" + fill(T.micro_stops_n, { n: s.micro_stops }) + ")" : "");
        }
        tip = hhmm(a) + "–" + hhmm(e) + " · " + what + " · " + parts.join(LANG === "zh" ? "，" : ", ");
      } else {
        const why = s.downtime_id ? " · " + (s.reason ? pick(s.reason_text, s.reason) : (s.micro_stop ? T.micro_stop : T.no_reason_given)) : "";
        tip = stateText(s.state) + " · " + hhmm(a) + "–" + hhmm(e) + " (" + mins + ")" + why;
      }
      const attrs = { class: "seg", x: x(a), y: top,
                      width: Math.max(x(e) - x(a), 1.5), height: bar, fill: colour,
                      "data-state": s.micro_stop ? "micro" : s.state,
                      "data-reason": s.reason || "" };
      if (s.merged > 1) attrs["data-merged"] = s.merged;
      root.append(svg("rect", attrs, title(tip)));
    }
    root.append(...breaks);  // over the states: a stop in a break costs nothing
    if (now > lo && now < hi) {
      root.append(svg("line", { x1: x(now), x2: x(now), y1: 0, y2: top + bar + 2, stroke: "#f0f3f6",
                                "stroke-width": 2, "vector-effect": "non-scaling-stroke" }));
    }
    // Hour ticks under the strip (at most ~12 labels).
    const hour = 3600e3, step = Math.max(1, Math.ceil((hi - lo) / hour / 12)) * hour;
    for (let t = Math.ceil(lo / hour) * hour; t <= hi; t += step) {
      root.append(svg("line", { x1: x(t), x2: x(t), y1: top + bar, y2: top + bar + 4, stroke: "#64748b",
                                "vector-effect": "non-scaling-stroke" }));
    }
    return root;
  }

  // Hour labels in HTML (an SVG stretched with preserveAspectRatio=none would squash text).
  function ticks(v) {
    const lo = Date.parse(v.from);
    const hi = end(v, lo);
    const hour = 3600e3, step = Math.max(1, Math.ceil((hi - lo) / hour / 8)) * hour;
    const row = el("div", { class: "pg-ticks", style: "position:relative;height:14px;font-size:11px;color:#9aa6b2" });
    for (let t = Math.ceil(lo / hour) * hour; t <= hi; t += step) {
      const left = ((t - lo) / (hi - lo)) * 100;
      if (left > 96) continue;
      row.append(el("span", { style: `position:absolute;left:${left}%;transform:translateX(-50%)` }, hhmm(t)));
    }
    return row;
  }

  function legend(v) {
    const seen = new Set(v.timeline.map((s) => (s.micro_stop ? "micro" : s.state)));
    const items = [];
    for (const s of Object.keys(COLOURS)) {
      if (s === "brk") continue;
      if (!seen.has(s)) continue;
      items.push(el("span", {}, el("i", { style: "background:" + COLOURS[s] }),
                    s === "micro" ? T.micro_stop : stateText(s)));
    }
    if (v.shift && v.shift.breaks.length) {
      items.push(el("span", {}, el("i", { style: "background:repeating-linear-gradient(45deg,#93c5fd 0 3px,transparent 3px 6px)" }), T.planned_break));
    }
    return el("div", { class: "pg-legend" }, ...items);
  }

  // Pareto: reasons by lost minutes, largest first, as horizontal bars (labels stay readable in
  // any language), with the cumulative share on the right.
  function pareto(v) {
    if (!v.pareto.length) return el("div", { class: "pg-none" }, T.pareto_none);
    // Drawn at about the card's pixel width, so the text keeps its size.
    const rowH = 20, W = 400, labelW = 130, numW = 112, H = v.pareto.length * rowH + 4;
    const max = Math.max(...v.pareto.map((b) => b.minutes), 0.1);
    const root = svg("svg", { class: "pg-pareto", viewBox: `0 0 ${W} ${H}`, role: "img",
                              "aria-label": T.pareto });
    v.pareto.forEach((b, i) => {
      const y = 2 + i * rowH, w = Math.max(((W - labelW - numW) * b.minutes) / max, 2);
      const label = reasonLabel(b);
      const tip = label + " · " + minutes(b.minutes) + " " + T.minutes + " · "
                  + fill(T.stops_n, { n: b.stops }) + " · Σ " + b.cumulative_pct + " %";
      root.append(
        svg("text", { x: labelW - 8, y: y + rowH / 2 + 4, "text-anchor": "end", fill: "#f0f3f6",
                      "font-size": 13 }, label.length > 16 ? label.slice(0, 15) + "…" : label),
        svg("rect", { x: labelW, y: y + 2, width: w, height: rowH - 6, rx: 3,
                      fill: b.reason === null ? "#64748b" : (LOSS_COLOURS[b.loss] || LOSS_COLOURS.other),
                      "data-reason": b.reason === null ? "" : b.reason, "data-minutes": b.minutes },
            title(tip)),
        svg("text", { x: labelW + w + 6, y: y + rowH / 2 + 4, fill: "#9aa6b2", "font-size": 12 },
            minutes(b.minutes) + " " + T.minutes + " · Σ " + Math.round(b.cumulative_pct) + " %"));
    });
    return root;
  }

  function card(v, now) {
    const f = v.figures;
    const over = f && f.performance !== null && f.performance > 100;
    const kpis = el("div", { class: "pg-kpis" },
      kpi("a", T.availability, pct(f && f.availability)),
      kpi("p", T.performance, pct(f && f.performance) + (over ? " ⚠" : ""), over ? T.perf_over : null),
      kpi("q", T.quality, pct(f && f.quality)),
      kpi("oee", T.oee, pct(f && f.oee)));
    const sub = el("div", { class: "pg-sub" },
      el("span", {}, T.good + " ", el("b", { class: "g", "data-fig": "good" }, fmtNum(f ? f.good : 0))),
      el("span", {}, T.scrap + " ", el("b", { class: "s", "data-fig": "scrap" }, fmtNum(f ? f.scrap : 0))),
      el("span", {}, T.downtime_min + " ", el("b", { "data-fig": "downtime" }, minutes(v.downtime_min)), " " + T.minutes),
      el("span", {}, T.micro_stops + " ", el("b", { "data-fig": "micro" }, fmtNum(v.micro_stops))));
    const head = el("div", { class: "pg-head" }, el("span", { class: "pg-id" }, v.work_center),
                    el("span", { class: "pg-shift" }, shiftText(v)));
    const strip = el("div", { class: "pg-strip" }, timeline(v, now, wc ? 22 : 28), ticks(v));
    const node = el("article", { class: "pg-wc", "data-work-center": v.work_center });
    if (wc) {
      node.append(head, kpis, strip, sub);
    } else {
      node.append(head, kpis, sub, el("div", { class: "pg-caption" }, T.timeline), strip, legend(v),
                  el("div", { class: "pg-caption" }, T.pareto), pareto(v));
    }
    return node;
  }

  // The strip's resolution: the seconds one CSS pixel of it shows, for the narrowest strip of
  // the last answer (its window over its width); before any answer, an 8-hour shift over the
  // narrowest column of the cards' grid (the strip is a little narrower still: the card's
  // padding; on the tablet the figures sit beside it: finer than needed, never coarser).
  let resolution = null;
  function measure(views) {
    let best = null;
    for (const v of views) {
      const node = box.querySelector(`article[data-work-center="${CSS.escape(v.work_center)}"] svg.pg-timeline`);
      const px = node ? node.getBoundingClientRect().width : 0;
      if (px < 50) continue;
      const lo = Date.parse(v.from), s = (end(v, lo) - lo) / 1000 / px;
      if (s > 0 && (best === null || s < best)) best = s;
    }
    return best;
  }
  function firstGuess() {
    const cols = getComputedStyle(box).gridTemplateColumns.split(" ").map(parseFloat)
      .filter((w) => w > 0);
    const px = cols.length ? Math.min(...cols) : box.getBoundingClientRect().width;
    return (8 * 3600) / Math.max(px || 0, 300);
  }
  function resolutionS() { return Math.max(1, Math.floor(resolution || firstGuess())); }

  async function refresh() {
    const q = new URLSearchParams();
    if (wc) q.set("work_center", wc);
    q.set("resolution_s", String(resolutionS()));
    let body;
    try { body = await api("GET", "/api/v1/progress/shift?" + q.toString()); } catch (err) { return; }
    const now = Date.parse(body.now);
    box.replaceChildren(...body.work_centers.map((v) => card(v, now)));
    resolution = measure(body.work_centers) || resolution;
    // The tablet's reason prompt skips stops wholly outside planned time (a break): it listens.
    if (wc) document.dispatchEvent(new CustomEvent("shift-progress", { detail: body.work_centers[0] }));
    section.dataset.loaded = "1";
  }

  refresh();
  setInterval(refresh, EVERY_MS);
})();
