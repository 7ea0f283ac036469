// The workshop page's script: draws the state from GET /api/state, then follows the ticks of
// GET /api/stream (server-sent events, one a second), and sends every button press to the
// JSON API (docs/workshop.md).
//
// Why no chart library: the page must work offline, from the binary alone — no CDN at run
// time, and no npm build step in a Rust workspace whose CI has no node. Three line charts on
// a canvas are a few dozen lines; a library would be a vendored blob nobody reviews.
"use strict";

const WINDOW_S = 120; // seconds of history the charts show
const JOURNEYS = ["browse", "buy"];
const METRICS = {
  rps: { unit: "", value: (point) => point.ok, floor: 10 },
  success: { unit: "%", value: (point) => point.success_rate == null ? null : point.success_rate * 100, fixed: [0, 100] },
  p99: { unit: " ms", value: (point) => point.p99_ms, floor: 10 },
};
// Marker colours by event kind; the red of a fault and the green of a heal match the report.
const MARKERS = {
  fault: "#d62728", died: "#8c0000", restarted: "#1e821e", heal: "#1e821e", ready: "#2ca02c",
  deploy: "#9467bd", scale: "#17becf", load: "#7f7f7f", check: "#333333", error: "#ff00aa",
  topology: "#000000",
};
// Markers that would only clutter the charts (the log still lists them).
const UNMARKED = new Set(["ready", "check"]);

// `builds` holds one entry per running topology; its `build` is the topology's name (a
// preset's, or its spec), which the control paths and the events name it by.
const state = { builds: [], presets: [], events: [], t_ms: 0, selected: null };

function element(tag, attributes = {}, text) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text != null) node.textContent = text;
  return node;
}

function color(build) {
  const found = state.builds.find((entry) => entry.build === build);
  return found ? found.color : "#000";
}

// ---- the API -------------------------------------------------------------------------------

async function call(method, path, body) {
  const result = document.getElementById("action-result");
  result.className = "";
  result.textContent = `${method} ${path} …`;
  try {
    const response = await fetch(path, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) {
      result.className = "error";
      result.textContent = answer.error ? `${answer.error.code}: ${answer.error.message}` : `HTTP ${response.status}`;
      return null;
    }
    result.textContent = describe(answer);
    return answer;
  } catch (error) {
    result.className = "error";
    result.textContent = `the workshop did not answer: ${error}`;
    return null;
  }
}

function describe(answer) {
  if (answer.message) return answer.message;
  if (answer.results) return answer.results.map((entry) => `${entry.build}: ${entry.message || entry.summary || (entry.done || []).join(", ")}`).join(" · ");
  if ("running" in answer) return answer.running ? `load running, ${answer.users_per_build} users per build` : "load stopped";
  return "done";
}

function controlPath(action) {
  const build = document.getElementById("control-build").value;
  const component = document.getElementById("control-component").value;
  return `/api/builds/${encodeURIComponent(build)}/components/${component}/${action}`;
}

// One button per in-process and network kind of the fault catalogue (GET /api/faults), each
// parameter an input holding its default within its range: a kind added to the catalogue
// shows up here without a change to this page.
async function faultButtons() {
  const answer = await fetch("/api/faults").then((response) => response.json()).catch(() => null);
  const container = document.getElementById("fault-buttons");
  if (!answer) {
    container.textContent = "the fault catalogue did not load";
    return;
  }
  const actions = { in_process: "fault", network: "network" };
  for (const spec of answer.faults.filter((spec) => spec.layer in actions)) {
    const action = actions[spec.layer];
    const kind = action === "network" ? spec.name.replace(/^net_/, "") : spec.name;
    const label = action === "network" ? `network ${kind}` : kind.replace("_", " ");
    container.append(element("button", { type: "button", "data-action": action, "data-kind": kind,
      "data-fault": spec.name, "data-about": spec.about, title: spec.about }, label));
    for (const param of spec.params) {
      const input = element("input", { type: "number", min: param.min, max: param.max, value: param.default,
        step: param.type === "number" ? "any" : "1", "data-fault": spec.name, "data-param": param.name,
        title: param.about });
      const field = element("label", { class: "small" });
      field.append(input, ` ${param.unit}`);
      container.append(field);
    }
  }
}

// Greys out each fault control the selected topology's platform does not realize, and each
// process control (kill, pause, deploy, scale) the topology does not, with the reason as
// its tooltip (from the capabilities in GET /api/state); with "both", a control stays
// usable while either topology realizes it. The self-healing controls are greyed where the
// platform restarts processes itself.
function greyOut() {
  const chosen = document.getElementById("control-build").value;
  const builds = state.builds.filter((entry) => chosen === "both" || entry.build === chosen);
  for (const button of document.querySelectorAll("#fault-buttons button[data-fault]")) {
    const reasons = builds.map((entry) => entry.capabilities.unavailable[button.dataset.fault]);
    const refused = reasons.length > 0 && reasons.every((reason) => reason);
    button.disabled = refused;
    button.title = refused ? reasons.join("; ") : button.dataset.about;
  }
  for (const button of document.querySelectorAll("#component-controls button[data-action]:not([data-fault])")) {
    const control = button.dataset.action === "storm" ? "deploy" : button.dataset.action;
    const reasons = builds.map((entry) => entry.capabilities.controls[control]);
    const refused = reasons.length > 0 && reasons.every((reason) => reason);
    button.disabled = refused;
    button.title = refused ? reasons.join("; ") : "";
  }
  const notHealed = state.builds.length > 0 && state.builds.every((entry) => entry.capabilities.self_healing);
  for (const id of ["self-healing", "restart-delay"]) {
    const input = document.getElementById(id);
    input.disabled = notHealed;
    input.title = notHealed ? state.builds.map((entry) => `${entry.build}: ${entry.capabilities.self_healing}`).join("; ") : "";
  }
}

function wireControls() {
  const users = document.getElementById("users");
  users.addEventListener("input", () => { document.getElementById("users-value").textContent = users.value; });
  document.getElementById("load-start").addEventListener("click", () =>
    call("POST", "/api/load", { users_per_build: Number(users.value) }));
  document.getElementById("load-stop").addEventListener("click", () => call("DELETE", "/api/load"));
  document.getElementById("heal-all").addEventListener("click", () => call("POST", "/api/heal"));
  document.getElementById("reset-data").addEventListener("click", () => call("POST", "/api/reset"));
  document.getElementById("run-check").addEventListener("click", async () => {
    document.getElementById("check-result").textContent = "checking (the load stops first) …";
    const answer = await call("POST", "/api/check");
    if (answer) drawCheck(answer);
  });
  const healing = () => call("PUT", "/api/self-healing", {
    enabled: document.getElementById("self-healing").checked,
    delay_ms: Number(document.getElementById("restart-delay").value),
  });
  document.getElementById("self-healing").addEventListener("change", healing);
  document.getElementById("restart-delay").addEventListener("change", healing);
  document.getElementById("control-build").addEventListener("change", greyOut);
  document.getElementById("topology-pick").addEventListener("click", pickTopology);
  document.getElementById("topology-preset").addEventListener("change", () => {
    const preset = state.presets.find((entry) => entry.name === document.getElementById("topology-preset").value);
    document.getElementById("topology-why").textContent = preset ? `${preset.processes}: ${preset.why}` : "";
  });
  for (const button of document.querySelectorAll("#component-controls button[data-action]")) {
    button.addEventListener("click", () => {
      const action = button.dataset.action;
      let body;
      if (action === "fault" || action === "network") {
        body = { kind: button.dataset.kind };
        for (const input of document.querySelectorAll(`input[data-fault="${button.dataset.fault}"]`)) {
          body[input.dataset.param] = Number(input.value);
        }
      } else if (action === "deploy") {
        body = { strategy: button.dataset.strategy };
      } else if (action === "storm") {
        call("POST", controlPath("deploy"), { strategy: "rolling", count: Number(document.getElementById("storm-count").value) });
        return;
      }
      call("POST", controlPath(action), body);
    });
  }
}

// ---- drawing -------------------------------------------------------------------------------

function drawLegend() {
  const legend = document.getElementById("builds-legend");
  legend.replaceChildren();
  for (const entry of state.builds) {
    const item = element("span", {}, `${entry.build} `);
    const swatch = element("i");
    swatch.style.background = entry.color;
    item.prepend(swatch);
    item.append(element("small", {}, entry.url));
    legend.append(item);
  }
  const select = document.getElementById("control-build");
  const before = select.value;
  select.replaceChildren();
  if (state.builds.length > 1) select.append(element("option", { value: "both" }, "both"));
  for (const entry of state.builds) select.append(element("option", { value: entry.build }, entry.build));
  if (state.builds.some((entry) => entry.build === before)) select.value = before;
  const replace = document.getElementById("topology-replace");
  const replaced = replace.value;
  replace.replaceChildren();
  for (const entry of state.builds) replace.append(element("option", { value: entry.build }, entry.build));
  if (state.builds.some((entry) => entry.build === replaced)) replace.value = replaced;
  greyOut();
  const markers = document.getElementById("marker-legend");
  markers.replaceChildren("markers:");
  for (const [kind, markerColor] of Object.entries(MARKERS)) {
    if (UNMARKED.has(kind)) continue;
    const swatch = element("i");
    swatch.style.background = markerColor;
    markers.append(swatch, kind);
  }
}

// The picker's choices: every preset (GET /api/state's `presets`), and a typed spec.
function drawPicker() {
  const presets = document.getElementById("topology-preset");
  if (presets.children.length > 0) return;
  for (const preset of state.presets) presets.append(element("option", { value: preset.name, title: preset.why }, `${preset.name} (${preset.processes})`));
  presets.dispatchEvent(new Event("change"));
}

// Starts the chosen topology in place of the selected running one; a typed spec wins over
// the preset list. The answer comes once the new processes are ready (seconds).
async function pickTopology() {
  const replace = document.getElementById("topology-replace").value;
  const typed = document.getElementById("topology-spec").value.trim();
  const topology = typed || document.getElementById("topology-preset").value;
  const status = document.getElementById("topology-status");
  const button = document.getElementById("topology-pick");
  button.disabled = true;
  status.dataset.state = "starting";
  status.textContent = `starting ${topology} in place of ${replace} …`;
  const answer = await call("PUT", `/api/builds/${encodeURIComponent(replace)}/topology`, { topology });
  button.disabled = false;
  status.dataset.state = answer ? "done" : "refused";
  status.textContent = answer ? answer.message : document.getElementById("action-result").textContent;
  if (answer) {
    document.getElementById("topology-spec").value = "";
    await refreshState();
  }
}

// Reads the running topologies again (after a pick, or a tick naming one the page does not
// know): their names, groups, capabilities and series.
let refreshing = null;
function refreshState() {
  if (!refreshing) {
    refreshing = fetch("/api/state").then((response) => response.json()).then((snapshot) => {
      state.builds = snapshot.builds;
      drawLegend();
      drawTopology();
      drawValues();
      drawCharts();
    }).catch(() => {}).finally(() => { refreshing = null; });
  }
  return refreshing;
}

function drawTopology() {
  const topology = document.getElementById("topology");
  topology.replaceChildren();
  for (const entry of state.builds) {
    const section = element("div", { class: "build-topology", "data-build": entry.build });
    section.style.borderColor = entry.color;
    const shop = entry.processes.filter((process) => !process.lab_part);
    section.append(element("h2", { title: entry.topology.spec },
      `${entry.build}: ${shop.length} shop processes · checkout ${entry.topology.checkout === "local" ? "local transactions" : "saga"}`));
    section.append(element("div", { class: "totals", "data-build": entry.build }, totals(entry, shop)));
    const boxes = element("div", { class: "boxes" });
    for (const process of entry.processes) {
      const box = element("div", {
        class: "process" + (process.lab_part ? " lab-part" : ""),
        "data-build": entry.build,
        "data-component": process.component,
        "data-replica": String(process.replica),
        "data-health": process.health,
        title: process.lab_part ? "the lab's front door (not the shop's)" : "click to select",
      });
      const key = `${entry.build}/${process.component}`;
      if (state.selected === key) box.classList.add("selected");
      box.append(element("b", {}, `${process.component}${process.replica > 1 ? " #" + process.replica : ""}`));
      // Which contexts share this process: a kill of it takes every one of them down.
      if (process.contexts.length > 0 && !(process.contexts.length === 1 && process.contexts[0] === process.component)) {
        box.append(element("div", { class: "contexts" }, process.contexts.join(" + ")));
      }
      const uptime = process.uptime_s == null ? "–" : formatDuration(process.uptime_s);
      const cpu = process.cpu_percent == null ? "–" : `${process.cpu_percent.toFixed(0)} %`;
      const rss = process.rss_mib == null ? "–" : `${process.rss_mib.toFixed(0)} MiB`;
      box.append(element("div", {}, `${process.health.replace("_", " ")} · pid ${process.pid}`));
      box.append(element("div", {}, `up ${uptime} · restarts ${process.restarts}`));
      box.append(element("div", {}, `CPU ${cpu} · ${rss}`));
      if (!process.lab_part) box.addEventListener("click", () => select(entry.build, process));
      boxes.append(box);
    }
    section.append(boxes);
    topology.append(section);
  }
}

// The shop's CPU and memory over all its processes (the lab's front door left out), and the
// CPU it spent per successful request in the last second: the figures a topology exercise
// compares.
function totals(entry, shop) {
  const cpu = shop.reduce((sum, process) => sum + (process.cpu_percent || 0), 0);
  const rss = shop.reduce((sum, process) => sum + (process.rss_mib || 0), 0);
  const ok = JOURNEYS.reduce((sum, journey) => {
    const points = entry.series[journey];
    return sum + (points.length > 0 ? points[points.length - 1].ok : 0);
  }, 0);
  // cpu_percent is of one core over the last second: 100 % is 1000 ms of CPU.
  const perRequest = ok > 0 ? `${((cpu * 10) / ok).toFixed(2)} ms CPU per request` : "no requests";
  return `CPU ${cpu.toFixed(0)} % · ${rss.toFixed(0)} MiB · ${perRequest}`;
}

// Selects a box's process for the controls. A group process is no component a control can
// name: its first context is chosen instead (an in-process fault goes to a context).
function select(build, process) {
  state.selected = `${build}/${process.component}`;
  document.getElementById("control-build").value = build;
  const chooser = document.getElementById("control-component");
  const names = [...chooser.options].map((option) => option.value);
  chooser.value = names.includes(process.component) ? process.component : process.contexts[0] || chooser.value;
  greyOut();
  drawTopology();
}

function formatDuration(seconds) {
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 7200) return `${Math.floor(seconds / 60)} min`;
  return `${Math.floor(seconds / 3600)} h`;
}

// The latest values under each journey's title: what a test (and the back row) reads.
function drawValues() {
  for (const journey of JOURNEYS) {
    const values = document.getElementById(`values-${journey}`);
    values.replaceChildren();
    for (const entry of state.builds) {
      const points = entry.series[journey];
      const last = points[points.length - 1];
      const span = element("span", { class: "build-values" });
      span.style.color = entry.color;
      const success = last && last.success_rate != null ? last.success_rate : null;
      span.append(`${entry.build}: `);
      // Successful requests only: a dead build refusing fast has no throughput.
      span.append(element("b", { id: `rps-${entry.build}-${journey}`, "data-value": last ? String(last.ok) : "" }, last ? `${last.ok} ok req/s` : "–"));
      span.append(" · ");
      span.append(element("b", { id: `success-${entry.build}-${journey}`, "data-value": success == null ? "" : String(success) },
        success == null ? "no requests" : `${(success * 100).toFixed(1)} % ok`));
      span.append(" · p99 ");
      span.append(element("b", { id: `p99-${entry.build}-${journey}` },
        last && last.p99_ms != null ? `${last.p99_ms.toFixed(1)} ms` : last && last.requests > 0 ? "no successful request" : "–"));
      values.append(span);
    }
  }
}

function drawCharts() {
  for (const canvas of document.querySelectorAll("canvas[data-metric]")) {
    drawChart(canvas, canvas.dataset.journey, METRICS[canvas.dataset.metric]);
  }
}

function drawChart(canvas, journey, metric) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth, height = canvas.clientHeight;
  if (canvas.width !== width * ratio || canvas.height !== height * ratio) {
    canvas.width = width * ratio;
    canvas.height = height * ratio;
  }
  const context = canvas.getContext("2d");
  context.setTransform(ratio, 0, 0, ratio, 0, 0);
  context.clearRect(0, 0, width, height);
  const left = 42, right = 6, top = 6, bottom = 18;
  const plotWidth = width - left - right, plotHeight = height - top - bottom;
  // The window grows from 30 s to WINDOW_S as the workshop runs, so the first minute is
  // not squeezed into the right edge.
  const end = state.t_ms / 1000;
  const span = Math.min(WINDOW_S, Math.max(30, end));
  const start = end - span;
  let [low, high] = metric.fixed || [0, metric.floor];
  if (!metric.fixed) {
    for (const entry of state.builds) {
      for (const point of entry.series[journey]) {
        const value = metric.value(point);
        if (value != null && point.t_ms / 1000 >= start) high = Math.max(high, value * 1.1);
      }
    }
  }
  const x = (seconds) => left + ((seconds - start) / span) * plotWidth;
  const y = (value) => top + plotHeight - ((value - low) / (high - low)) * plotHeight;
  // Axes and grid.
  context.strokeStyle = "#e2e2e2";
  context.fillStyle = "#666";
  context.font = "11px system-ui, sans-serif";
  context.lineWidth = 1;
  for (let step = 0; step <= 4; step += 1) {
    const value = low + ((high - low) * step) / 4;
    context.beginPath();
    context.moveTo(left, y(value));
    context.lineTo(width - right, y(value));
    context.stroke();
    context.fillText(value >= 100 ? value.toFixed(0) : value.toFixed(1), 2, y(value) + 4);
  }
  for (let ago = 0; ago <= span; ago += span > 60 ? 30 : 10) context.fillText(ago === 0 ? "now" : `-${ago}s`, x(end - ago) - 12, height - 4);
  // Event markers.
  for (const event of state.events) {
    const seconds = event.t_ms / 1000;
    if (seconds < start || UNMARKED.has(event.kind)) continue;
    context.strokeStyle = MARKERS[event.kind] || "#999";
    context.setLineDash(event.build ? [4, 3] : [1, 3]);
    context.beginPath();
    context.moveTo(x(seconds), top);
    context.lineTo(x(seconds), top + plotHeight);
    context.stroke();
    context.setLineDash([]);
    if (event.build) {
      context.fillStyle = color(event.build);
      context.fillRect(x(seconds) - 3, top, 6, 6);
    }
  }
  // One line per build; a second without requests leaves a gap.
  for (const entry of state.builds) {
    context.strokeStyle = entry.color;
    context.lineWidth = 2;
    context.beginPath();
    let drawing = false;
    for (const point of entry.series[journey]) {
      const seconds = point.t_ms / 1000;
      const value = metric.value(point);
      if (seconds < start || value == null) { drawing = false; continue; }
      if (drawing) context.lineTo(x(seconds), y(Math.min(value, high)));
      else context.moveTo(x(seconds), y(Math.min(value, high)));
      drawing = true;
    }
    context.stroke();
  }
}

function drawEvents(events) {
  const list = document.getElementById("events");
  for (const event of events) {
    const item = element("li", { "data-kind": event.kind });
    item.style.borderLeftColor = event.build ? color(event.build) : "#999";
    item.append(element("time", {}, `${clock(event.t_ms)} +${(event.t_ms / 1000).toFixed(1)}s`));
    const badge = element("b", {}, event.kind);
    badge.style.color = MARKERS[event.kind] || "#333";
    item.append(badge, ` ${event.build ? event.build + ": " : ""}${event.message}`);
    list.prepend(item);
  }
  while (list.children.length > 300) list.lastChild.remove();
}

// Wall-clock time of a workshop timestamp, from the offset between the clocks at the last tick.
function clock(t_ms) {
  const wall = new Date(state.wallAtZero + t_ms);
  return wall.toTimeString().slice(0, 8);
}

function drawCheck(answer) {
  const result = document.getElementById("check-result");
  result.replaceChildren(element("h2", {}, "Invariant checker"));
  for (const entry of answer.results) {
    const table = element("table", { "data-build": entry.build, "data-valid": String(entry.valid) });
    table.append(element("caption", {}, `${entry.build}: ${entry.summary}${entry.quiescent ? "" : " (not quiescent)"}`));
    for (const invariant of entry.report.invariants) {
      const row = element("tr");
      const holds = invariant.violations === 0;
      row.append(element("td", {}, invariant.id), element("td", {}, invariant.name),
        element("td", { class: holds ? "holds" : "violated" }, holds ? (invariant.checked ? "holds" : "not checked") : `${invariant.violations}: ${invariant.first_example || ""}`));
      table.append(row);
    }
    result.append(table);
  }
}

function drawLoad(load, healing) {
  const status = document.getElementById("load-status");
  status.dataset.running = String(load.running);
  status.textContent = load.running ? `running: ${load.users_per_build} users per build` : "idle";
  if (healing) {
    const checkbox = document.getElementById("self-healing");
    if (document.activeElement !== checkbox) checkbox.checked = healing.enabled;
    const delay = document.getElementById("restart-delay");
    if (document.activeElement !== delay) delay.value = String(healing.delay_ms);
  }
}

// ---- the live feed -------------------------------------------------------------------------

function applyTick(tick) {
  state.t_ms = tick.t_ms;
  state.wallAtZero = Date.now() - tick.t_ms;
  for (const update of tick.builds) {
    const entry = state.builds.find((candidate) => candidate.build === update.build);
    if (!entry) {
      // A topology another page (or the API) picked: read the state again.
      refreshState();
      continue;
    }
    for (const journey of JOURNEYS) {
      entry.series[journey].push(update[journey]);
      if (entry.series[journey].length > 900) entry.series[journey].shift();
    }
    entry.processes = update.processes;
  }
  state.events.push(...tick.events);
  drawEvents(tick.events);
  drawLoad(tick.load, tick.healing);
  drawTopology();
  drawValues();
  drawCharts();
}

async function start() {
  await faultButtons();
  wireControls();
  const response = await fetch("/api/state");
  const snapshot = await response.json();
  state.builds = snapshot.builds;
  state.presets = snapshot.presets;
  state.events = snapshot.events;
  state.t_ms = snapshot.t_ms;
  state.wallAtZero = Date.now() - snapshot.t_ms;
  document.getElementById("users").max = String(snapshot.max_users_per_build);
  drawLegend();
  drawPicker();
  drawEvents(snapshot.events);
  drawLoad(snapshot.load, snapshot.healing);
  drawTopology();
  drawValues();
  drawCharts();
  const connection = document.getElementById("connection");
  const stream = new EventSource("/api/stream");
  stream.addEventListener("open", () => { connection.dataset.state = "live"; connection.textContent = "live"; });
  stream.addEventListener("error", () => { connection.dataset.state = "lost"; connection.textContent = "reconnecting…"; });
  stream.addEventListener("tick", (message) => applyTick(JSON.parse(message.data)));
  window.addEventListener("resize", drawCharts);
}

start();
