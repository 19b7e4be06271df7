// orch serve's page: the status from /api/status, refetched (coalesced) on each event of
// /api/events. Everything an agent wrote (task texts, questions, logs, host and branch names)
// goes into the document as text only: textContent and createTextNode, never markup.
"use strict";

(function () {
  // The token `orch serve` printed, from the address's fragment (`#token=`) once: kept in this
  // tab's sessionStorage at most, and taken out of the address bar (and so of the browser's
  // history) at once. Every /api/ request carries it (`Authorization: Bearer`).
  const token = (function () {
    const m = /(?:^#|&)token=([0-9a-f]{16,128})(?:&|$)/.exec(window.location.hash);
    let t = m ? m[1] : null;
    try {
      if (t) { window.sessionStorage.setItem("orch-token", t); } else { t = window.sessionStorage.getItem("orch-token"); }
    } catch (e) { /* no storage: the token in memory only */ }
    if (window.location.hash) {
      window.history.replaceState(null, "", window.location.pathname + window.location.search);
    }
    return t && /^[0-9a-f]{16,128}$/.test(t) ? t : null;
  })();
  let control = false;
  let renders = 0;
  let inFlight = false;
  let again = false;
  let timer = null;
  let last = "";
  let shownLog = null;
  let goodAt = null;
  // The task the say box is open for: {plan, task}.
  let sayTo = null;

  function $(id) { return document.getElementById(id); }

  // An element with attributes (set as attributes, never as markup) and children (strings
  // become text nodes).
  function el(tag, attrs, children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== undefined && v !== null) { e.setAttribute(k, String(v)); }
    }
    for (const c of children || []) {
      if (c === null || c === undefined) { continue; }
      e.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
    }
    return e;
  }

  function svg(tag, attrs, text) {
    const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attrs || {})) { e.setAttribute(k, String(v)); }
    if (text !== undefined) { e.textContent = String(text); }
    return e;
  }

  function clear(e) { while (e.firstChild) { e.removeChild(e.firstChild); } }

  function problem(text) {
    const p = $("problem");
    p.textContent = text || "";
    p.hidden = !text;
  }

  function authorized(headers) {
    const h = Object.assign({}, headers || {});
    if (token) { h["Authorization"] = "Bearer " + token; }
    return h;
  }

  async function getJson(path) {
    const r = await fetch(path, { cache: "no-store", credentials: "omit", headers: authorized() });
    let v = null;
    try { v = await r.json(); } catch (e) { throw new Error("HTTP " + r.status + ", not JSON"); }
    if (!r.ok || v === null || typeof v !== "object") {
      throw new Error(String((v && v.error) || ("HTTP " + r.status)));
    }
    return v;
  }

  async function act(verb, args) {
    const r = await fetch("/api/control/" + encodeURIComponent(verb), {
      method: "POST",
      credentials: "omit",
      headers: authorized({ "Content-Type": "application/json" }),
      body: JSON.stringify(args),
    });
    let v = {};
    try { v = await r.json(); } catch (e) { v = {}; }
    if (!r.ok) { problem("`" + verb + "` failed: " + (v.error || ("HTTP " + r.status))); return false; }
    problem("");
    schedule(0);
    return v && typeof v === "object" ? v : {};
  }

  // The status again, at most one fetch at a time, events coming close together coalesced.
  function schedule(delay) {
    if (timer !== null) { return; }
    timer = setTimeout(function () { timer = null; refresh(); }, delay === undefined ? 100 : delay);
  }

  async function refresh() {
    if (inFlight) { again = true; return; }
    inFlight = true;
    try {
      const v = await getJson("/api/status");
      const text = JSON.stringify(v);
      // The same status again (an event that changed nothing shown): the page as it is.
      if (text !== last) { last = text; render(v); }
      goodAt = new Date();
      problem("");
    } catch (e) {
      // The last good state stays shown, with why it may be old.
      problem("cannot read the status: " + e.message + (goodAt ? " (showing the status of " + goodAt.toLocaleTimeString() + ")" : ""));
    } finally {
      inFlight = false;
      if (again) { again = false; schedule(0); }
    }
  }

  function plansOf(v) {
    if (Array.isArray(v.plans)) { return v.plans; }
    if (v.plan) { return [v]; }
    return [];
  }

  function tokensText(u) {
    if (!u || typeof u !== "object") { return ""; }
    const inp = Number(u.input_tokens || 0), out = Number(u.output_tokens || 0);
    const parts = [];
    if (inp || out) { parts.push((inp + out).toLocaleString() + " tokens"); }
    let cost = null;
    if (typeof u.cost_usd === "number") { cost = u.cost_usd; }
    else if (typeof u.cost_micro_usd === "number") { cost = u.cost_micro_usd / 1e6; }
    if (cost !== null) { parts.push("$" + cost.toFixed(2)); }
    return parts.join(", ");
  }

  // Where a task runs or ran: its host (a remote one while it runs), else its agent.
  function whereOf(t) {
    const parts = [];
    if (t.remote_host) { parts.push(String(t.remote_host)); }
    if (t.agent) { parts.push(String(t.agent)); }
    if (t.job_id) { parts.push("job " + String(t.job_id)); }
    return parts.join(" · ");
  }

  function outcome(p) {
    const s = p.summary || {};
    if (p.plan_paused) { return "paused"; }
    if (s.total && s.completed + s.skipped === s.total) { return "done"; }
    if (s.failed) { return s.failed + " failed"; }
    if (s.in_progress || s.checking) { return "running"; }
    return "waiting";
  }

  function render(v) {
    const plans = plansOf(v);
    renderQuestions(plans);
    renderIntegration(v);
    renderPlans(plans);
    renderGraph(plans);
    renderTimeline(plans, v);
    $("totals").textContent = tokensText(v.usage);
    renders += 1;
    document.body.setAttribute("data-renders", String(renders));
    document.body.setAttribute("data-rendered-at", String(Date.now()));
  }

  function renderQuestions(plans) {
    const box = $("questions");
    const focused = document.activeElement && box.contains(document.activeElement);
    if (focused) { return; }
    clear(box);
    let n = 0;
    for (const p of plans) {
      for (const t of p.tasks || []) {
        if (t.status !== "needs_input") { continue; }
        n += 1;
        const q = el("div", { "class": "question", "data-task": p.plan + ":" + t.id }, [
          el("div", {}, [el("strong", {}, [p.plan + " " + t.id]), " ", el("span", { "class": "desc" }, [t.description || ""])]),
          el("p", { "class": "question-text" }, [t.question || ""]),
        ]);
        if (control) {
          const area = el("textarea", { "class": "answer", "aria-label": "answer" });
          const send = el("button", { "class": "send-answer", "type": "button" }, ["Answer"]);
          send.addEventListener("click", function () {
            if (!area.value.trim()) { return; }
            send.disabled = true;
            act("answer", { plan: p.plan, task: t.id, text: area.value }).then(function (ok) {
              send.disabled = false;
              if (ok) { area.value = ""; area.blur(); }
            });
          });
          q.appendChild(area);
          q.appendChild(send);
        }
        box.appendChild(q);
      }
    }
    $("questions-box").hidden = n === 0;
  }

  function button(label, cls, onclick) {
    const b = el("button", { "type": "button", "class": cls }, [label]);
    b.addEventListener("click", function (ev) { ev.stopPropagation(); onclick(); });
    return b;
  }

  function secs(ms) { return (Number(ms) / 1000).toFixed(1) + " s"; }

  function clock(ms) { return new Date(ms).toLocaleTimeString(); }

  // The last attempt's check, when one ran: `check 1.2 s` (`check running` while it runs).
  function lastCheck(t) {
    const list = Array.isArray(t.attempt_times) ? t.attempt_times : [];
    for (let i = list.length - 1; i >= 0; i--) {
      const a = list[i];
      if (typeof a.check_ms === "number") { return "check " + secs(a.check_ms); }
      if (a.check_started_at && !a.ended) { return "check running"; }
    }
    return "";
  }

  function tookText(t) {
    const took = t.duration_ms ? secs(t.duration_ms) : "";
    const check = lastCheck(t);
    return took && check ? took + " (" + check + ")" : (took || check);
  }

  // A forecast's band: `ends 10:31–10:45, $1.20–2.40 more` (its p50 and p90).
  function forecastText(f) {
    if (!f || typeof f !== "object") { return ""; }
    const a = time(f.eta_p50), b = time(f.eta_p90);
    if (a === null || b === null) { return ""; }
    let text = "forecast: ends " + clock(a) + "–" + clock(b);
    if (typeof f.cost_p50 === "number" && typeof f.cost_p90 === "number") {
      text += ", $" + f.cost_p50.toFixed(2) + "–" + f.cost_p90.toFixed(2) + " more";
    }
    if (Array.isArray(f.waiting_for_answers) && f.waiting_for_answers.length) { text += " (if the questions are answered now)"; }
    return text;
  }

  // The last integration test (`orch integrate`, the preview of `orch up`), and whether one runs.
  function renderIntegration(v) {
    const box = $("integration");
    const r = v.integration && typeof v.integration === "object" ? v.integration : null;
    const running = v.integration_running === true;
    $("integration-box").hidden = !r && !running;
    clear(box);
    if (!r && !running) { box.removeAttribute("data-state"); return; }
    const f = r && r.failure && typeof r.failure === "object" ? r.failure : null;
    let state = running ? "running" : (r.result === "green" ? "green" : (r.result === "red" ? (f && f.conflict ? "conflicts" : "red") : "nothing_to_test"));
    box.setAttribute("data-state", state);
    const words = { running: "running", green: "passed", red: "failed", conflicts: "conflicts", nothing_to_test: "nothing to test" };
    box.appendChild(el("p", {}, [el("span", { "class": "state" }, [words[state]]), running && r ? " (the last one: " + (r.result || "") + ")" : ""]));
    if (!r) { return; }
    const tested = (Array.isArray(r.tested) ? r.tested : []).map(function (x) { return String(x.plan || x.branch || ""); });
    box.appendChild(el("p", { "class": "tested" }, [
      tested.length ? tested.length + " plan" + (tested.length === 1 ? "" : "s") + " (" + tested.join(", ") + ") on " + String(r.target || "") : "no plan branch to test",
      r.target_commit ? " at " + String(r.target_commit).slice(0, 12) : "",
      r.verified ? ", verified" : ", textual conflicts only",
      r.verify_skipped ? " (" + String(r.verify_skipped) + ")" : "",
    ]));
    if (!f) { return; }
    const plans = Array.isArray(f.plans) ? f.plans.map(String) : [];
    box.appendChild(el("p", { "class": "failure" }, [plans.join(" + ") + (plans.length > 1 ? " break together" : " fails") + " (culprit " + String(f.culprit || "") + ")"]));
    if (Array.isArray(f.conflict)) {
      box.appendChild(el("p", {}, ["conflict in:"]));
      box.appendChild(el("ul", { "class": "conflict" }, f.conflict.map(function (x) { return el("li", {}, [String(x)]); })));
    }
    if (f.verify && typeof f.verify === "object") {
      const code = f.verify.exit_code;
      box.appendChild(el("p", {}, [typeof code === "number" ? "verify exited with status " + code : "verify did not finish"]));
      const lines = Array.isArray(f.verify.last_lines) ? f.verify.last_lines.map(String) : [];
      if (lines.length) { box.appendChild(el("pre", { "class": "verify-lines" }, [lines.join("\n")])); }
    }
    if (f.reason) { box.appendChild(el("p", { "class": "reason" }, [String(f.reason)])); }
  }

  function openSay(plan, task) {
    sayTo = { plan: plan, task: task };
    $("say-title").textContent = "Say to " + plan + " " + task;
    $("say-box").hidden = false;
    $("say-box").setAttribute("data-task", plan + ":" + task);
    $("say-text").focus();
  }

  function closeSay() {
    sayTo = null;
    $("say-box").hidden = true;
    $("say-box").removeAttribute("data-task");
    $("say-text").value = "";
  }

  function sendSay() {
    const text = $("say-text").value;
    if (!sayTo || !text.trim()) { return; }
    const to = sayTo;
    $("say-send").disabled = true;
    act("say", { plan: to.plan, task: to.task, text: text }).then(function (v) {
      $("say-send").disabled = false;
      if (!v) { return; }
      closeSay();
      const said = $("said");
      said.textContent = "Said to " + to.plan + " " + to.task + ": " + (v.delivered ? "delivered (to its running attempt " + String(v.attempt) + ")" : "kept for the next attempt");
      said.hidden = false;
    });
  }

  function renderPlans(plans) {
    const box = $("plans");
    clear(box);
    if (plans.length === 0) { box.appendChild(el("p", { "class": "empty" }, ["No plans."])); return; }
    for (const p of plans) {
      const s = p.summary || {};
      const total = s.total || (p.tasks || []).length;
      const done = (s.completed || 0) + (s.skipped || 0);
      const pct = total ? Math.round(100 * done / total) : 0;
      const head = el("h3", {}, [
        el("span", { "class": "plan-name" }, [p.plan]),
        el("span", { "class": "plan-title" }, [p.title || ""]),
        el("span", { "class": "outcome", "data-outcome": outcome(p) }, [done + "/" + total + " · " + outcome(p)]),
        el("span", { "class": "usage" }, [tokensText(p.usage)]),
        el("span", { "class": "forecast", "data-plan": p.plan }, [outcome(p) === "done" ? "" : forecastText(p.forecast)]),
      ]);
      if (control) {
        head.appendChild(p.plan_paused
          ? button("Resume", "resume", function () { act("resume", { plan: p.plan }); })
          : button("Pause", "pause", function () { act("pause", { plan: p.plan }); }));
      }
      const fill = el("div", {});
      fill.style.width = pct + "%";
      const rows = [];
      for (const t of p.tasks || []) {
        const where = whereOf(t);
        const row = el("tr", { "class": "task", "data-task": p.plan + ":" + t.id, "data-status": t.status }, [
          el("td", { "class": "id" }, [t.id]),
          el("td", { "class": "status s-" + t.status }, [t.status + (t.stage ? " (" + t.stage + ")" : "")]),
          el("td", { "class": "desc" }, [t.description || ""]),
          el("td", { "class": "where" }, [where]),
          el("td", { "class": "took" }, [tookText(t)]),
          el("td", { "class": "cause" }, [t.cause || t.question || ""]),
        ]);
        if (control) {
          const cell = el("td", {});
          if (t.status === "failed") { cell.appendChild(button("Retry", "retry", function () { act("retry", { plan: p.plan, task: t.id }); })); }
          if (t.status === "in_progress") { cell.appendChild(button("Stop", "stop", function () { act("stop", { plan: p.plan, task: t.id }); })); }
          if (t.status !== "completed" && t.status !== "skipped") { cell.appendChild(button("Say", "say", function () { openSay(p.plan, t.id); })); }
          row.appendChild(cell);
        }
        row.addEventListener("click", function () { showLog(p.plan, t.id); });
        rows.push(row);
      }
      box.appendChild(el("div", { "class": "plan", "data-plan": p.plan }, [
        head,
        el("div", { "class": "bar" }, [fill]),
        el("table", {}, [el("tbody", {}, rows)]),
      ]));
    }
  }

  // The tasks as nodes in columns by depth (the longest chain of dependencies before them),
  // an edge from each dependency.
  function renderGraph(plans) {
    const g = $("graph");
    clear(g);
    const nodes = new Map();
    for (const p of plans) {
      for (const t of p.tasks || []) { nodes.set(p.plan + ":" + t.id, { p: p.plan, t: t, deps: [] }); }
    }
    for (const [key, n] of nodes) {
      for (const d of n.t.dependencies || []) {
        const name = String(d);
        const full = nodes.has(n.p + ":" + name) ? n.p + ":" + name : name;
        if (nodes.has(full) && full !== key) { n.deps.push(full); }
      }
    }
    const depth = new Map();
    function depthOf(k, seen) {
      if (depth.has(k)) { return depth.get(k); }
      if (seen.has(k)) { return 0; }
      seen.add(k);
      let d = 0;
      for (const x of nodes.get(k).deps) { d = Math.max(d, depthOf(x, seen) + 1); }
      depth.set(k, d);
      return d;
    }
    const columns = [];
    for (const k of nodes.keys()) {
      const d = depthOf(k, new Set());
      (columns[d] = columns[d] || []).push(k);
    }
    const W = 150, H = 24, at = new Map();
    let rows = 0;
    columns.forEach(function (col, x) {
      col.forEach(function (k, y) { at.set(k, [10 + x * W, 10 + y * H]); });
      rows = Math.max(rows, col.length);
    });
    g.setAttribute("width", String(20 + columns.length * W));
    g.setAttribute("height", String(20 + rows * H));
    for (const [k, n] of nodes) {
      const [x2, y2] = at.get(k);
      for (const d of n.deps) {
        const [x1, y1] = at.get(d);
        g.appendChild(svg("path", { "class": "edge", d: "M" + (x1 + 120) + " " + (y1 + 9) + " L" + x2 + " " + (y2 + 9) }));
      }
    }
    for (const [k, n] of nodes) {
      const [x, y] = at.get(k);
      const node = svg("g", { "class": "node n-" + n.t.status, "data-task": k });
      node.appendChild(svg("rect", { x: x, y: y, width: 120, height: 18, rx: 3 }));
      const label = svg("text", { x: x + 4, y: y + 13 }, (plans.length > 1 ? k : n.t.id));
      node.appendChild(label);
      node.appendChild(svg("title", {}, k + " " + (n.t.description || "") + " (" + n.t.status + ")"));
      g.appendChild(node);
    }
  }

  function time(s) { const t = Date.parse(s); return isNaN(t) ? null : t; }

  // One lane per plan: each attempt that started, from its start to its end (now while it
  // runs), its check's part in a colour of its own with its time; without attempts' times, each
  // task that started. Behind them, the plan's forecast as a band from its p50 end to its p90.
  function renderTimeline(plans, v) {
    const box = $("timeline");
    clear(box);
    const now = Date.now();
    const spans = [];
    const bands = [];
    let lo = Infinity, hi = -Infinity;
    for (const p of plans) {
      for (const t of p.tasks || []) {
        const times = Array.isArray(t.attempt_times) ? t.attempt_times : [];
        if (times.length) {
          for (const x of times) {
            const a = time(x.started_at);
            if (a === null) { continue; }
            let b = time(x.ended_at);
            const running = b === null;
            if (running) { b = t.status === "in_progress" || t.stage ? now : a; }
            const c = time(x.check_started_at);
            spans.push({ p: p.plan, t: t, a: a, b: Math.max(a, b), attempt: x.attempt, ended: x.ended || (running ? "running" : ""), check: c === null ? null : Math.min(Math.max(a, c), Math.max(a, b)), checkMs: x.check_ms });
            lo = Math.min(lo, a); hi = Math.max(hi, b);
          }
          continue;
        }
        const a = time(t.started_at);
        if (a === null) { continue; }
        let b = time(t.completed_at);
        if (b === null) { b = t.duration_ms ? a + t.duration_ms : (t.status === "in_progress" ? now : a); }
        spans.push({ p: p.plan, t: t, a: a, b: Math.max(a, b), check: null });
        lo = Math.min(lo, a); hi = Math.max(hi, b);
      }
      // A plan with nothing left to run has nothing to forecast.
      const f = outcome(p) === "done" ? null : p.forecast;
      const f50 = f ? time(f.eta_p50) : null, f90 = f ? time(f.eta_p90) : null;
      if (f50 !== null && f90 !== null) {
        bands.push({ p: p.plan, a: Math.min(f50, f90), b: Math.max(f50, f90), f: f });
        lo = Math.min(lo, now); hi = Math.max(hi, f50, f90);
      }
    }
    $("run-forecast").textContent = v && v.forecast ? forecastText(v.forecast).replace("forecast: ", "forecast, all plans: ") : "";
    if (spans.length === 0 && bands.length === 0) { box.appendChild(el("p", { "class": "empty" }, ["Nothing ran yet."])); return; }
    const range = Math.max(1, hi - lo);
    const pos = function (x) { return (100 * (x - lo) / range) + "%"; };
    box.appendChild(el("p", { "class": "empty" }, [new Date(lo).toLocaleString() + " → " + new Date(hi).toLocaleString()]));
    for (const p of plans) {
      const lane = el("div", { "class": "lane", "data-plan": p.plan }, [el("span", { "class": "lane-name" }, [p.plan])]);
      for (const bd of bands) {
        if (bd.p !== p.plan) { continue; }
        const band = el("div", { "class": "band", "data-plan": p.plan, "data-p50": bd.f.eta_p50, "data-p90": bd.f.eta_p90, "title": forecastText(bd.f) });
        band.style.left = pos(bd.a);
        band.style.width = (100 * (bd.b - bd.a) / range) + "%";
        lane.appendChild(band);
        if (now >= lo && now <= hi) {
          const mark = el("div", { "class": "now", "title": "now" });
          mark.style.left = pos(now);
          lane.appendChild(mark);
        }
      }
      for (const s of spans) {
        if (s.p !== p.plan) { continue; }
        const where = whereOf(s.t);
        const stage = s.t.stage ? " (" + s.t.stage + ")" : "";
        const attempt = s.attempt ? " attempt " + s.attempt + (s.ended ? " " + s.ended : "") : "";
        const check = typeof s.checkMs === "number" ? ", check " + secs(s.checkMs) : (s.check !== null ? ", check running" : "");
        const cls = "span s-" + s.t.status + (s.t.stage ? " " + s.t.stage : "") + (s.ended ? " ended-" + s.ended : "");
        const span = el("div", { "class": cls, "data-task": s.p + ":" + s.t.id, "data-attempt": s.attempt, "title": s.t.id + stage + attempt + " " + where + " " + secs(s.b - s.a) + check }, [s.t.id]);
        span.style.left = pos(s.a);
        span.style.width = (100 * (s.b - s.a) / range) + "%";
        if (s.check !== null) {
          const part = el("div", { "class": "check", "data-check-ms": typeof s.checkMs === "number" ? s.checkMs : null, "title": "check " + (typeof s.checkMs === "number" ? secs(s.checkMs) : "running") });
          part.style.width = (s.b > s.a ? 100 * (s.b - s.check) / (s.b - s.a) : 0) + "%";
          span.appendChild(part);
        }
        lane.appendChild(span);
      }
      box.appendChild(lane);
    }
  }

  async function showLog(plan, task) {
    shownLog = plan + ":" + task;
    $("log-box").hidden = false;
    $("log-title").textContent = "Log of " + plan + " " + task;
    $("log").textContent = "…";
    try {
      const v = await getJson("/api/logs?plan=" + encodeURIComponent(plan) + "&task=" + encodeURIComponent(task));
      if (shownLog === plan + ":" + task) { $("log").textContent = v.text || ""; }
    } catch (e) {
      if (shownLog === plan + ":" + task) { $("log").textContent = "no log: " + e.message; }
    }
  }

  // orch's events, read as server-sent events over fetch (an EventSource cannot send the
  // token): each event makes the status be read again; a stream that ends or is refused (the
  // server's streams all taken) is opened again later, from the last event's id.
  async function listen() {
    let lastId = null;
    for (;;) {
      let wait = 2000;
      try {
        const headers = authorized();
        if (lastId !== null) { headers["Last-Event-ID"] = lastId; }
        const r = await fetch("/api/events", { cache: "no-store", credentials: "omit", headers: headers });
        if (!r.ok || !r.body) { wait = 5000; throw new Error("HTTP " + r.status); }
        $("conn").textContent = "live";
        const reader = r.body.getReader();
        const decoder = new TextDecoder();
        let buf = "", name = "message", id = null;
        for (;;) {
          const part = await reader.read();
          if (part.done) { break; }
          buf += decoder.decode(part.value, { stream: true });
          let nl;
          while ((nl = buf.indexOf("\n")) >= 0) {
            let line = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            if (line.endsWith("\r")) { line = line.slice(0, -1); }
            if (line === "") {
              if (id !== null) { lastId = id; }
              if (name === "ready") { $("conn").textContent = "live"; schedule(0); } else if (name === "orch" || name === "state") { schedule(); }
              name = "message";
              continue;
            }
            const colon = line.indexOf(":");
            if (colon === 0) { continue; }
            const field = colon < 0 ? line : line.slice(0, colon);
            let value = colon < 0 ? "" : line.slice(colon + 1);
            if (value.startsWith(" ")) { value = value.slice(1); }
            if (field === "event") { name = value; } else if (field === "id" && /^[0-9]{1,20}$/.test(value)) { id = value; }
          }
          // A line longer than any event orch writes: the stream is not orch's.
          if (buf.length > 4194304) { reader.cancel(); break; }
        }
      } catch (e) { /* refused or gone: tried again below */ }
      $("conn").textContent = "reconnecting";
      schedule(0);
      await new Promise(function (done) { setTimeout(done, wait); });
    }
  }

  async function start() {
    $("say-send").addEventListener("click", sendSay);
    $("say-cancel").addEventListener("click", closeSay);
    if (!token) {
      $("mode").textContent = "no token";
      $("conn").textContent = "not connected";
      problem("open the address `orch serve` printed, with its #token=…: the server answers nothing else");
      return;
    }
    try {
      const info = await getJson("/api/info");
      control = Boolean(info.control);
      $("mode").textContent = control ? "control" : "read-only";
    } catch (e) {
      problem("cannot reach orch serve: " + e.message);
    }
    listen();
    refresh();
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
