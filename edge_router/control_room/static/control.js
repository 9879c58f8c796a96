// The control room's page: buttons post to /_edge/control/*, charts draw the feed.
// Every button shows the terminal command it runs; no state lives here but the
// charts' last five minutes.
"use strict";

const BASE = "/_edge/control/";
const POINTS = 300;
const CHART_HEIGHT = 300;
const PRESETS = {
  // tests/loadtest/test_sale_run.py's miniature, and `sale run`'s own defaults
  miniature: {units: 12, warmup: 1, baseline: 3, buyers: 24, "arrival-rate": 6, after: 3,
              "tourney-rate": 5, browsers: 2, "tourney-buyers": 1, "drain-timeout": 60,
              traces: false},
  default: {units: 300, warmup: 5, baseline: 24, buyers: 1200, "arrival-rate": 60, after: 22,
            "tourney-rate": 25, browsers: 5, "tourney-buyers": 3, "drain-timeout": 120,
            traces: true},
};
const $ = (selector) => document.querySelector(selector);

function logAction(text, ok) {
  const item = document.createElement("li");
  item.textContent = `${new Date().toLocaleTimeString()} ${text}`;
  item.className = ok ? "ok" : "refused";
  $("#actions").prepend(item);
}

async function act(path, body) {
  const response = await fetch(BASE + path, {
    method: "POST",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify(body),
    credentials: "same-origin",
  });
  let doc = {};
  try { doc = await response.json(); } catch (error) { doc = {error: String(error)}; }
  const said = doc.error || doc.output || (doc.mode && `mode ${doc.mode.mode}`) ||
    (doc.sale && `sale ${doc.sale.state}`) || "";
  logAction(`${response.status} ${doc.command || path}: ${said}`, response.ok);
  return {ok: response.ok, doc};
}

// --- the mode --------------------------------------------------------------------
function modeBody(mode) {
  return mode === "canary" ? {mode, percent: Number($("#canary-percent").value)} : {mode};
}
function modeCommand(body) {
  return `python manage.py edge mode ${body.mode}` +
    (body.percent !== undefined ? ` --percent ${body.percent}` : "");
}
function showMode(mode) {
  if (!mode) return;
  $("#mode-current").textContent = mode.mode === "canary" ? `canary ${mode.percent}%` : mode.mode;
  document.querySelectorAll("[data-mode]").forEach((button) => {
    button.classList.toggle("active", button.dataset.mode === mode.mode);
  });
}
document.querySelectorAll("[data-mode]").forEach((button) => {
  button.addEventListener("mouseenter", () => {
    $("#mode-command").textContent = modeCommand(modeBody(button.dataset.mode));
  });
  button.addEventListener("click", async () => {
    const body = modeBody(button.dataset.mode);
    $("#mode-command").textContent = modeCommand(body);
    const {ok, doc} = await act("mode", body);
    if (ok) showMode(doc.mode);
  });
});

// --- the sale --------------------------------------------------------------------
const saleFields = () => document.querySelectorAll("#sale-panel .fields [name]");
function saleBody() {
  const body = {};
  saleFields().forEach((field) => {
    if (field.type === "checkbox") body[field.name] = field.checked;
    else if (field.tagName === "SELECT") body[field.name] = field.value;
    else if (field.value !== "") body[field.name] = Number(field.value);
  });
  return body;
}
function saleCommand() {
  const body = saleBody();
  const words = ["python -m loadtest run --no-start"];
  if (body.mode !== "both") words.push(`--mode ${body.mode}`);
  for (const [flag, value] of Object.entries(body)) {
    if (flag !== "mode" && flag !== "traces") words.push(`--${flag} ${value}`);
  }
  if (body.traces === false) words.push("--no-traces");
  $("#sale-command").textContent = words.join(" ");
}
function salePreset(name) {
  saleFields().forEach((field) => {
    const value = PRESETS[name][field.name];
    if (value === undefined) return;
    if (field.type === "checkbox") field.checked = value; else field.value = value;
  });
  saleCommand();
}
document.querySelectorAll("[data-preset]").forEach((button) => {
  button.addEventListener("click", () => salePreset(button.dataset.preset));
});
saleFields().forEach((field) => field.addEventListener("input", saleCommand));
$("#sale-start").addEventListener("click", () => act("sale/start", saleBody()));
$("#sale-stop").addEventListener("click", () => act("sale/stop", {}));
function showSale(sale) {
  $("#sale-state").textContent = sale ? `${sale.state}${sale.code != null ? ` (exit ${sale.code})` : ""}` : "none";
  $("#sale-lines").textContent = sale && sale.lines ? sale.lines.join("\n") : "";
}

// --- the faults --------------------------------------------------------------------
function faultRow(fault) {
  const row = document.createElement("tr");
  row.dataset.fault = fault.name;
  const name = document.createElement("th");
  name.textContent = fault.name;
  name.title = fault.help;
  const cell = document.createElement("td");
  const input = document.createElement("input");
  input.value = fault.example;
  input.size = 5;
  input.setAttribute("aria-label", `${fault.name} value`);
  const unit = document.createElement("span");
  unit.textContent = fault.unit;
  const command = document.createElement("code");
  const describe = () => {
    command.textContent = `python manage.py faults set ${fault.name}=${input.value} --ttl ${$("#fault-ttl").value}`;
  };
  input.addEventListener("input", describe);
  $("#fault-ttl").addEventListener("input", describe);
  describe();
  const set = document.createElement("button");
  set.type = "button";
  set.textContent = "Set";
  set.className = "fault-set";
  set.addEventListener("click", () => act("faults/set",
    {name: fault.name, value: input.value, ttl: Number($("#fault-ttl").value)}));
  const clear = document.createElement("button");
  clear.type = "button";
  clear.textContent = "Clear";
  clear.className = "fault-clear";
  clear.title = `python manage.py faults clear ${fault.name}`;
  clear.addEventListener("click", () => act("faults/clear", {name: fault.name}));
  cell.append(input, unit, set, clear, command);
  row.append(name, cell);
  return row;
}
function showCatalogue(catalogue) {
  const body = $("#fault-switches tbody");
  body.replaceChildren(...catalogue.faults.map(faultRow));
  const select = $("#kill-process");
  select.replaceChildren(...catalogue.killable.map((name) => new Option(name, name)));
  const describe = () => { $("#kill-command").textContent = `python manage.py faults kill ${select.value}`; };
  select.addEventListener("change", describe);
  describe();
}
$("#faults-clear").addEventListener("click", () => act("faults/clear", {}));
$("#kill").addEventListener("click", () => act("faults/kill", {process: $("#kill-process").value}));
function showFaults(faults) {
  const text = faults === null ? "unknown (Redis does not answer)" :
    faults.length === 0 ? "none" :
    faults.map((f) => `${f.name}=${f.value} (${f.seconds_left}s left)`).join(", ");
  $("#faults-in-force").textContent = text;
  document.querySelectorAll("[data-fault]").forEach((row) => {
    row.classList.toggle("in-force", !!faults && faults.some((f) => f.name === row.dataset.fault));
  });
}

// --- the charts --------------------------------------------------------------------
const CHARTS = {
  tourney: {el: "#chart-tourney", series: [["p50 ms", "#4fc3f7"], ["p99 ms", "#ff8a65"]],
            pick: (t) => [t.tourney.p50_ms, t.tourney.p99_ms]},
  orders: {el: "#chart-orders", series: [["accepted/s", "#81c784"], ["fulfilled/s", "#ba68c8"],
                                           ["warehouse packed/s", "#90a4ae"]],
           pick: (t) => [t.muskie.accepted_per_s, t.muskie.fulfilled_per_s, t.warehouse.packed_per_s]},
  queue: {el: "#chart-queue", series: [["depth", "#ffd54f"]], pick: (t) => [t.queue.depth]},
  warehouse: {el: "#chart-warehouse", series: [["new path (MU)", "#81c784"], ["legacy (LF)", "#ff8a65"],
                                                 ["capacity", "#e0e0e0"]],
              pick: (t) => [t.warehouse.new_path, t.warehouse.legacy, t.warehouse.capacity]},
};
const data = {};
const plots = {};
function makeCharts() {
  for (const [name, chart] of Object.entries(CHARTS)) {
    data[name] = [[], ...chart.series.map(() => [])];
    const host = $(chart.el);
    plots[name] = new uPlot({
      width: host.clientWidth || 500, height: CHART_HEIGHT,
      series: [{}, ...chart.series.map(([label, stroke]) => ({label, stroke, width: 2, spanGaps: false}))],
      axes: [{stroke: "#ccc", grid: {stroke: "#333"}}, {stroke: "#ccc", grid: {stroke: "#333"}}],
      scales: {x: {time: true}},
    }, data[name], host);
  }
  window.addEventListener("resize", () => {
    for (const [name, chart] of Object.entries(CHARTS)) {
      plots[name].setSize({width: $(chart.el).clientWidth, height: CHART_HEIGHT});
    }
  });
}
function readout(selector, value) {
  const el = $(selector);
  el.textContent = value == null ? "–" : String(value);
  if (value != null) el.dataset.peak = String(Math.max(Number(el.dataset.peak || 0), Number(value)));
}
function addTick(tick, redraw) {
  for (const [name, chart] of Object.entries(CHARTS)) {
    const columns = data[name];
    columns[0].push(tick.at);
    chart.pick(tick).forEach((value, i) => columns[i + 1].push(value));
    if (columns[0].length > POINTS) columns.forEach((column) => column.shift());
    if (redraw) plots[name].setData(columns);
  }
  readout("#readout-p50", tick.tourney.p50_ms);
  readout("#readout-p99", tick.tourney.p99_ms);
  readout("#readout-accepted", tick.muskie.accepted_per_s);
  readout("#readout-fulfilled", tick.muskie.fulfilled_per_s);
  readout("#readout-packed", tick.warehouse.packed_per_s);
  readout("#readout-depth", tick.queue.depth);
  readout("#readout-mu", tick.warehouse.new_path);
  readout("#readout-lf", tick.warehouse.legacy);
  readout("#readout-capacity", tick.warehouse.capacity);
  document.body.dataset.ticks = String(Number(document.body.dataset.ticks || 0) + 1);
}
function onTick(tick) {
  addTick(tick, true);
  showMode(tick.mode);
  showFaults(tick.faults);
  showSale(tick.sale);
  $("#down").textContent = tick.down.length ? `not answering: ${tick.down.join(", ")}` : "";
}

// --- the sale's slowest Tourney requests, each linked to its trace -----------------
function link(href, text) {
  const anchor = document.createElement("a");
  anchor.href = href;
  anchor.textContent = text;
  anchor.target = "_blank";
  anchor.rel = "noopener";
  return anchor;
}
function slowestRow(request) {
  const row = document.createElement("tr");
  row.dataset.trace = request.trace_id;
  const at = request.start ? new Date(request.start * 1000).toLocaleTimeString() : "?";
  for (const text of [request.mode, request.ms.toFixed(1), at, String(request.status)]) {
    const cell = document.createElement("td");
    cell.textContent = text;
    row.append(cell);
  }
  const trace = document.createElement("td");
  if (request.view) trace.append(link(BASE + request.view, request.trace_id));
  else trace.textContent = `${request.trace_id} (not in the trace store)`;
  if (request.jaeger) trace.append(" ", link(request.jaeger, "Jaeger"));
  row.append(trace);
  return row;
}
let slowestShown = "";
async function showSlowest() {
  const response = await fetch(BASE + "slowest", {credentials: "same-origin"});
  if (!response.ok) return;
  const doc = await response.json();
  const said = JSON.stringify(doc);
  if (said === slowestShown) return;
  slowestShown = said;
  const note = doc.report ? `(${doc.report}${doc.running ? "; a sale is running" : ""})`
    : doc.running ? "(listed when the running sale's load ends)" : "(none yet)";
  $("#slowest-report").textContent = note;
  $("#slowest tbody").replaceChildren(...doc.requests.map(slowestRow));
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(`${scheme}//${location.host}${BASE}feed`);
  socket.addEventListener("open", () => { $("#feed-state").textContent = "live"; });
  socket.addEventListener("message", (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "history") {
      message.ticks.forEach((tick) => addTick(tick, false));
      for (const name of Object.keys(CHARTS)) plots[name].setData(data[name]);
    } else {
      onTick(message);
    }
  });
  socket.addEventListener("close", () => {
    $("#feed-state").textContent = "reconnecting…";
    setTimeout(connect, 2000);
  });
}

async function start() {
  const response = await fetch(BASE + "state", {credentials: "same-origin"});
  if (!response.ok) { location.reload(); return; }
  const state = await response.json();
  $("#who").textContent = state.who;
  $("#watched-path").textContent = state.watched_path;
  showMode(state.mode);
  showCatalogue(state.catalogue);
  salePreset("miniature");
  makeCharts();
  connect();
  showSlowest();
  setInterval(showSlowest, 5000);
}
start();
