// The artel dashboard: one page, routed by the address's #fragment, fed by /api/ and
// kept live by /api/live (server-sent events). Data is only ever put in the page as
// text (never as HTML), so nothing a task carries can run here.
"use strict";

const csrf = document.querySelector('meta[name="artel-csrf"]').content;
const page = document.getElementById("page");
const STATES = ["PENDING", "RECEIVED", "STARTED", "SUCCESS", "FAILURE", "RETRY", "REVOKED", "REJECTED"];
let latest = { overview: null, tasks: null };

// h("td.num", {title: "x"}, "text", child...): an element with classes, attributes and children.
function h(spec, attrs, ...children) {
  const [tag, ...classes] = spec.split(".");
  const el = document.createElement(tag);
  if (classes.length) el.className = classes.join(" ");
  if (attrs === null || attrs === undefined || attrs === false) {
    // no attributes, no child
  } else if (typeof attrs !== "object" || attrs instanceof Node || Array.isArray(attrs)) {
    children.unshift(attrs);
  } else {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null) continue;
      if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v);
    }
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const when = (ms) => (ms ? new Date(ms).toLocaleString() : "—");
const ago = (ms) => {
  if (!ms) return "—";
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  return s < 60 ? `${s}s ago` : s < 3600 ? `${Math.floor(s / 60)}m ago` : `${Math.floor(s / 3600)}h ago`;
};
const state = (s) => h(`span.state.${s}`, { "data-state": s }, s);
const taskLink = (id) => h("a.mono", { href: `#/task/${encodeURIComponent(id)}` }, id);

function toast(text) {
  const t = document.getElementById("toast");
  t.textContent = text;
  t.classList.add("show");
  setTimeout(() => t.classList.remove("show"), 2500);
}

async function api(path, body) {
  const init = body === undefined ? {} : {
    method: "POST",
    headers: { "content-type": "application/json", "x-artel-csrf": csrf },
    body: JSON.stringify(body),
  };
  const response = await fetch(path, init);
  const data = await response.json().catch(() => ({ error: `${response.status} ${response.statusText}` }));
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

async function act(label, path, body) {
  try {
    const answer = await api(path, body);
    toast(`${label}: ${JSON.stringify(answer)}`);
    render();
  } catch (e) {
    toast(`${label} failed: ${e.message}`);
  }
}

function route() {
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, query] = hash.split("?");
  return { path, params: new URLSearchParams(query || "") };
}

// ---- pages ----

function overviewPage(o) {
  const alive = o.workers.filter((w) => w.alive);
  const depth = (k) => o.queues.reduce((n, q) => n + q[k], 0);
  return [
    h("h1", "Overview"),
    h("div.cards",
      card("Workers", alive.length, "workers-alive"),
      card("Succeeded (1 h)", o.last_hour.succeeded, "succeeded"),
      card("Failed (1 h)", o.last_hour.failed, "failed"),
      card("Failure rate", `${(o.last_hour.failure_rate * 100).toFixed(1)}%`, "failure-rate"),
      card("Ready", depth("ready"), "ready"),
      card("Running", depth("leased"), "leased"),
      card("Dead", depth("dead"), "dead")),
    h("h2", "Finished tasks per minute, last hour"),
    chart(o.throughput),
    h("h2", "Queues"),
    queueTable(o.queues, false),
    h("h2", "Workers"),
    workerTable(o.workers, false),
  ];
}

function card(label, n, id) {
  return h("div.card", { "data-card": id }, h("div.n", n), h("div.l", label));
}

function chart(minutes) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("class", "chart");
  svg.setAttribute("viewBox", "0 0 600 140");
  svg.setAttribute("preserveAspectRatio", "none");
  const top = Math.max(1, ...minutes.map((m) => m.succeeded + m.failed));
  minutes.forEach((m, i) => {
    const x = i * 10 + 1;
    const ok = (m.succeeded / top) * 130, bad = (m.failed / top) * 130;
    for (const [cls, height, y] of [["ok", ok, 140 - ok], ["bad", bad, 140 - ok - bad]]) {
      if (height <= 0) continue;
      const r = document.createElementNS(ns, "rect");
      r.setAttribute("class", cls);
      r.setAttribute("x", x); r.setAttribute("width", 8);
      r.setAttribute("y", y); r.setAttribute("height", height);
      const title = document.createElementNS(ns, "title");
      title.textContent = `${new Date(m.at_ms).toLocaleTimeString()}: ${m.succeeded} ok, ${m.failed} failed`;
      r.append(title);
      svg.append(r);
    }
  });
  return svg;
}

function queueTable(queues, actions) {
  if (!queues.length) return h("p.muted", "No queues yet.");
  return h("table",
    h("tr", h("th", "Queue"), h("th.num", "Ready"), h("th.num", "Delayed"), h("th.num", "Running"), h("th.num", "Dead"), actions && h("th", "")),
    queues.map((q) => h("tr", { "data-queue": q.queue },
      h("td", h("a", { href: `#/tasks?queue=${encodeURIComponent(q.queue)}` }, q.queue)),
      h("td.num", q.ready), h("td.num", q.delayed), h("td.num", q.leased), h("td.num", q.dead),
      actions && h("td",
        h("button.danger", { "data-action": "purge", onclick: () => confirm(`Purge every waiting message of ${q.queue}?`) && act("purged", `/api/queues/${encodeURIComponent(q.queue)}/purge`, {}) }, "Purge"),
        " ",
        q.dead > 0 && h("button", { onclick: () => act("retried", "/api/dead/retry", { queue: q.queue }) }, "Retry dead")))));
}

function workerTable(workers, actions) {
  if (!workers.length) return h("p.muted", "No worker has reported.");
  const running = (w) => (w.stats.running || []).map((t) => h("div",
    taskLink(t.id), " ", t.name, " ", h("span.muted", ago(t.started * 1000)), " ",
    actions && h("button.danger", { "data-action": "terminate", onclick: () => confirm(`Stop ${t.name} ${t.id}?`) && act("terminated", `/api/tasks/${encodeURIComponent(t.id)}/revoke`, { terminate: true }) }, "Terminate")));
  return h("table",
    h("tr", h("th", "Worker"), h("th", "Seen"), h("th", "Pool"), h("th", "Queues"), h("th.num", "Active"), h("th.num", "Succeeded"), h("th.num", "Failed"), h("th.num", "Retried"),
      h("th", "Per task: count, p50 / p99 / max ms"), actions && h("th", "Running now"), actions && h("th", "")),
    workers.map((w) => h("tr", { "data-worker": w.name },
      h("td", h("span.state", { class: `state ${w.alive ? "SUCCESS" : "REVOKED"}` }, w.alive ? "up" : "gone"), " ", w.name),
      h("td", ago(w.heartbeat_at_ms)),
      h("td", w.stats.pool ? `${w.stats.pool} × ${w.stats.concurrency}` : "—"),
      h("td", (w.stats.queues || []).join(", ")),
      h("td.num", w.stats.active ?? 0), h("td.num", w.stats.succeeded ?? 0), h("td.num", w.stats.failed ?? 0), h("td.num", w.stats.retried ?? 0),
      h("td", Object.entries(w.stats.tasks || {}).map(([name, t]) =>
        h("div.mono", `${name}: ${t.count}, ${t.p50_ms} / ${t.p99_ms} / ${t.max_ms}`))),
      actions && h("td", running(w)),
      actions && h("td", w.alive && h("button.danger", { "data-action": "stop-worker", onclick: () => confirm(`Stop ${w.name}? It finishes its running tasks first.`) && act("stopping", `/api/workers/${encodeURIComponent(w.name)}/stop`, {}) }, "Stop")))));
}

function taskTable(tasks) {
  if (!tasks.length) return h("p.muted", "No tasks match.");
  return h("table",
    h("tr", h("th", "Task id"), h("th", "Name"), h("th", "Queue"), h("th", "State"), h("th", "Worker"), h("th", "Updated"), h("th.num", "Runtime ms"), h("th", "Arguments")),
    tasks.map((t) => h("tr", { "data-task-id": t.task_id },
      h("td", taskLink(t.task_id)), h("td", t.task), h("td", t.queue), h("td", state(t.state)),
      h("td", t.worker), h("td", { title: when(t.updated_at_ms) }, ago(t.updated_at_ms)),
      h("td.num", t.runtime_ms ?? ""), h("td.mono", t.args))));
}

async function tasksPage(params, pushed) {
  const filters = ["state", "task", "queue"].filter((k) => params.get(k));
  const since = params.get("since_min");
  const tasks = pushed && !filters.length && !since ? pushed : await api(`/api/tasks?${query(params)}`);
  return [h("h1", "Tasks"), filterForm(params), taskTable(tasks)];
}

function query(params) {
  const q = new URLSearchParams();
  for (const k of ["state", "task", "queue"]) if (params.get(k)) q.set(k, params.get(k));
  const since = Number(params.get("since_min"));
  if (since > 0) q.set("since_ms", String(Date.now() - since * 60000));
  q.set("limit", "200");
  return q.toString();
}

function filterForm(params) {
  const input = (name, placeholder) => h("input", { name, placeholder, value: params.get(name) || "" });
  const select = h("select", { name: "state" }, h("option", { value: "" }, "any state"),
    STATES.map((s) => h("option", { value: s, ...(params.get("state") === s ? { selected: "" } : {}) }, s)));
  const search = h("input", { name: "id", placeholder: "task id" });
  return h("form.filters", {
    onsubmit: (e) => {
      e.preventDefault();
      const data = new FormData(e.target);
      const id = (data.get("id") || "").trim();
      if (id) { location.hash = `#/task/${encodeURIComponent(id)}`; return; }
      const q = new URLSearchParams();
      for (const [k, v] of data) if (v && k !== "id") q.set(k, v);
      location.hash = `#/tasks?${q}`;
    },
  }, select, input("task", "task name"), input("queue", "queue"),
     h("select", { name: "since_min" }, ["", "5", "60", "1440"].map((m) =>
       h("option", { value: m, ...(params.get("since_min") === m ? { selected: "" } : {}) }, m ? `last ${m} min` : "any time"))),
     h("button", { type: "submit" }, "Filter"), search, h("button", { type: "submit" }, "Find"));
}

async function taskPage(id) {
  const t = await api(`/api/tasks/${encodeURIComponent(id)}`);
  const r = t.record || {};
  const result = t.result || {};
  const current = r.state && (!result.status || r.updated_at_ms) ? r.state : result.status;
  const steps = [["sent", r.sent_at_ms], ["received", r.received_at_ms], ["started", r.started_at_ms], [current || "—", r.updated_at_ms]];
  const fact = (k, v) => [h("dt", k), h("dd", v ?? "—")];
  return [
    h("h1", "Task ", h("span.mono", id), " ", current && state(current)),
    h("dl.facts",
      fact("Name", r.task || result.name), fact("Queue", r.queue), fact("Worker", r.worker || result.worker),
      fact("Arguments", h("span.mono", r.args || "")), fact("Retries", r.retries),
      fact("Runtime", r.runtime_ms !== undefined ? `${r.runtime_ms} ms` : undefined),
      fact("Parent", r.parent_id && taskLink(r.parent_id)), fact("Root", r.root_id && r.root_id !== id ? taskLink(r.root_id) : r.root_id && "itself"),
      fact("Group", result.group_id), fact("Children", t.children.length ? t.children.map((c) => [taskLink(c), " "]) : undefined)),
    h("h2", "Timeline"),
    h("ol.timeline", steps.filter(([, at]) => at).map(([name, at]) => h("li", h("strong", name), h("div.muted", when(at))))),
    r.error && [h("h2", "Error"), h("pre.error", r.error)],
    result.status && [h("h2", "Result"), h("pre", JSON.stringify(result.result, null, 2))],
    result.traceback && [h("h2", "Traceback"), h("pre", result.traceback)],
    h("h2", "Actions"),
    h("button", { "data-action": "revoke", onclick: () => act("revoked", `/api/tasks/${encodeURIComponent(id)}/revoke`, { terminate: false }) }, "Revoke"), " ",
    h("button.danger", { "data-action": "terminate", onclick: () => confirm("Stop it if it is running?") && act("terminated", `/api/tasks/${encodeURIComponent(id)}/revoke`, { terminate: true }) }, "Terminate"),
  ];
}

async function deadPage() {
  const dead = await api("/api/dead?limit=500");
  return [
    h("h1", "Dead letters"),
    h("p", h("button", { "data-action": "retry-all-dead", onclick: () => act("retried", "/api/dead/retry", {}) }, "Retry all"), " ",
      h("button.danger", { "data-action": "purge-all-dead", onclick: () => confirm("Delete every dead letter?") && act("purged", "/api/dead/purge", {}) }, "Purge all")),
    dead.length ? h("table",
      h("tr", h("th", "Task id"), h("th", "Queue"), h("th", "Reason"), h("th", "Died"), h("th.num", "Deliveries"), h("th", "")),
      dead.map((d) => h("tr", { "data-dead": d.task_id },
        h("td", taskLink(d.task_id)), h("td", d.queue), h("td", d.reason), h("td", ago(d.died_at_ms)), h("td.num", d.deliveries),
        h("td", h("button", { "data-action": "retry-dead", onclick: () => act("retried", "/api/dead/retry", { queue: d.queue }) }, "Retry queue")))))
      : h("p.muted", "No dead letters."),
  ];
}

async function failedPage() {
  const failed = await api("/api/failed?limit=500");
  return [
    h("h1", "Failed tasks"),
    h("p", h("button", { "data-action": "retry-all-failed", onclick: () => act("run again", "/api/failed/retry", {}) }, "Run all again")),
    failed.length ? h("table",
      h("tr", h("th", "Task id"), h("th", "Name"), h("th", "Queue"), h("th", "Error"), h("th", "Failed"), h("th.num", "Attempts"), h("th", "")),
      failed.map((f) => h("tr", { "data-failed": f.task_id },
        h("td", taskLink(f.task_id)), h("td", f.task), h("td", f.queue), h("td.mono", f.error), h("td", ago(f.failed_at_ms)), h("td.num", f.attempts),
        h("td", h("button", { "data-action": "retry-failed", onclick: () => act("run again", "/api/failed/retry", { task_ids: [f.task_id] }) }, "Run again")))))
      : h("p.muted", "No failed tasks."),
  ];
}

async function schedulesPage() {
  const { leader, entries } = await api("/api/schedules");
  const until = (ms) => {
    if (!ms) return "never";
    const s = Math.round((ms - Date.now()) / 1000);
    return s <= 0 ? "due" : s < 60 ? `in ${s}s` : s < 3600 ? `in ${Math.floor(s / 60)}m` : `in ${Math.floor(s / 3600)}h`;
  };
  return [
    h("h1", "Schedules"),
    h("p", { "data-leader": leader ? leader.node : "" },
      leader ? ["Leading beat: ", h("strong", leader.node), ` since ${when(leader.since_ms)}`] : h("span.muted", "No beat has taken the lead yet.")),
    entries.length ? h("table",
      h("tr", h("th", "Entry"), h("th", "Task"), h("th", "When"), h("th", "Next fire"), h("th", "Handled up to")),
      entries.map((e) => h("tr", { "data-entry": e.name },
        h("td", e.name), h("td", e.task), h("td.mono", e.when),
        h("td", { title: when(e.next_fire_ms) }, until(e.next_fire_ms)),
        h("td", { title: when(e.last_fire_ms) }, e.last_fire_ms ? ago(e.last_fire_ms) : "not yet"))))
      : h("p.muted", "The schedule has no entries."),
  ];
}

// ---- rendering ----

let rendering = false;
async function render(pushed) {
  if (rendering) return;
  rendering = true;
  const { path, params } = route();
  for (const a of document.querySelectorAll("header nav a")) {
    const target = a.getAttribute("href").slice(1);
    a.classList.toggle("active", target === "/" ? path === "/" : path.startsWith(target));
  }
  try {
    let content;
    if (path === "/") content = overviewPage(latest.overview || await api("/api/overview"));
    else if (path === "/queues") content = [h("h1", "Queues"), queueTable(await api("/api/queues"), true)];
    else if (path === "/tasks") content = await tasksPage(params, pushed);
    else if (path.startsWith("/task/")) content = await taskPage(decodeURIComponent(path.slice(6)));
    else if (path === "/dead") content = await deadPage();
    else if (path === "/failed") content = await failedPage();
    else if (path === "/schedules") content = await schedulesPage();
    else if (path === "/workers") content = [h("h1", "Workers"), workerTable(await api("/api/workers"), true)];
    else content = [h("h1", "Not found"), h("p", h("a", { href: "#/" }, "Back to the overview"))];
    page.replaceChildren(...[content].flat(Infinity).filter(Boolean));
  } catch (e) {
    page.replaceChildren(h("h1", "Cannot show this page"), h("p.error", e.message));
  } finally {
    rendering = false;
  }
}

function connect() {
  const live = document.getElementById("live");
  const source = new EventSource("/api/live");
  source.addEventListener("open", () => live.classList.remove("off"));
  source.addEventListener("error", () => live.classList.add("off"));
  source.addEventListener("overview", (e) => {
    latest.overview = JSON.parse(e.data);
    const { path } = route();
    if (path !== "/tasks") render();
  });
  source.addEventListener("tasks", (e) => {
    latest.tasks = JSON.parse(e.data);
    if (route().path === "/tasks") render(latest.tasks);
  });
}

window.addEventListener("hashchange", () => render());
render();
connect();
