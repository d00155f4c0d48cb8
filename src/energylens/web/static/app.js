// EnergyLens explorer: a form, the ranked deployments (numbered and noted as `energylens recommend` numbers and
// notes them), how uncertain the ranking is, the Pareto front coloured by GPU, the per-term breakdown of the
// selected row, the objective switch, and a fit on uploaded measurements with the model in use named.
// Plain JavaScript over the JSON API (/api/*) and the vendored Vega-Lite; no build step, no external request.
"use strict";

const state = {
  options: null, objective: "energy", result: null, selected: 0, configId: null,
  fitted: null,       // the model fitted on an upload: {id, rows, file, mode, kept}
  resultModel: null,  // the model that priced the shown result: {fitted: bool, label}
};
const $ = (id) => document.getElementById(id);
const NARROW = window.matchMedia("(max-width: 699px)");

// The table's columns. Headers are the CLI's (cli/_recommend_view.py; tests/test_web_explorer.py checks that they
// agree), "\n" a line break as in the terminal. `more`: behind "all columns" on a phone.
const COLUMNS = [
  { key: "rank", head: "#" },
  { key: "gpus", head: "GPUs", left: true },
  { key: "layout", head: "layout", left: true },
  { key: "batch_size", head: "batch" },
  { key: "energy_request_j", head: "J/req" },
  { key: "energy_token_j", head: "J/tok" },
  { key: "interval", head: "J/req\n95%", more: true },
  { key: "cost_usd_per_million_tokens", head: "$/Mtok", more: true },
  { key: "carbon_gco2e_per_1000_requests", head: "gCO2e\n/1k req", more: true },
  { key: "ttft_ms", head: "TTFT\nms", more: true },
  { key: "itl_ms", head: "ITL\nms", more: true },
  { key: "main_term", head: "main\nterm", left: true, more: true },
  { key: "note", head: "note", left: true },
];
// The note column's labels, as the CLI's (NOTES and EXTRAP there), with what each means.
const NOTES = [
  ["latency_optimal", "lat-opt", "latency-optimal: the lowest predicted end-to-end latency per request at the best row's batch"],
  ["tp_default", "TP-def", "TP default: all GPUs of the largest count in one tensor-parallel group"],
];
const EXTRAP = ["extrap", "outside the model's training data"];

// A number as the CLI prints it (cli/_console.fmt): 4 significant digits, never an exponent, whole numbers whole,
// thousands separated from 10,000 up.
function fmt(v, digits = 4) {
  if (v === null || v === undefined || Number.isNaN(v)) return "";
  if (typeof v !== "number") return String(v);
  if (!Number.isFinite(v)) return v > 0 ? "inf" : "-inf";
  if (Math.abs(v) >= 10000) return Math.round(v).toLocaleString("en-US");
  if (Number.isInteger(v)) return String(v);
  return v.toLocaleString("en-US", { maximumSignificantDigits: digits, useGrouping: false });
}

function layout(row) {  // 'tp2·pp2': the parallel degrees above 1, 'single' for one GPU (the CLI's layout())
  const parts = [["tp", row.tp], ["pp", row.pp], ["ep", row.ep], ["dp", row.dp]].filter(([, v]) => v > 1).map(([n, v]) => n + v);
  return parts.join("·") || "single";
}

const rankLabel = (row) => (row.replica_of_smaller ? `(${row.rank})` : String(row.rank));
const deployment = (row) => `${row.gpu} x${row.num_gpus} ${layout(row)}, batch ${row.batch_size}`;
const extrapolates = (row) => typeof row.extrapolation === "string" && row.extrapolation.trim() !== "";
const hasInterval = (row) => row.energy_request_lo_j !== null && row.energy_request_lo_j !== undefined;
const intervalText = (row) => (hasInterval(row) ? `${fmt(row.energy_request_lo_j)}–${fmt(row.energy_request_hi_j)}` : "");

function mainTerm(row, terms) {  // 'compute 65%': the group with the largest share (the CLI's main_term())
  let best = null;
  for (const g of Object.keys(terms)) {
    const v = row[`${g}_pct`];
    if (v !== null && v !== undefined && (best === null || v > row[`${best}_pct`])) best = g;
  }
  return best === null ? "" : `${terms[best]} ${row[`${best}_pct`].toFixed(0)}%`;
}

async function api(path, options) {
  const response = await fetch(path, options);
  let body = null;
  try { body = await response.json(); } catch (e) { body = { error: `HTTP ${response.status}` }; }
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

function showError(message, id = "error") {  // the red box of a form: "error" (Recommend), "load-error", "fit-error"
  const box = $(id);
  box.textContent = message || "";
  box.hidden = !message;
}

function markStale(stale) {  // results from the request before a failed one: dimmed, and said so
  $("results").classList.toggle("stale", stale);
  $("stale").hidden = !stale;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else if (k === "text") node.textContent = v; else node.setAttribute(k, v);
  }
  node.append(...children);
  return node;
}

function fillForm(o) {
  const models = $("model");
  for (const m of o.models) models.add(new Option(m, m, false, m === "meta-llama/Llama-3.1-8B"));
  const pool = $("gpus");
  for (const g of o.gpus) {
    const box = el("input", { type: "checkbox", value: g });
    box.checked = g === "H100-SXM" || g === "B200";
    pool.append(el("label", { title: g }, box, " " + g));
  }
  for (const [name, g] of Object.entries(o.regions)) {
    $("region").add(new Option(`${name} (${g} gCO2e/kWh)`, name, false, name === o.default_region));
  }
  const d = o.defaults;
  $("max_gpus").value = d.max_gpus ?? 8;
  $("input_tokens").value = d.input_tokens ?? 1024;
  $("output_tokens").value = d.output_tokens ?? 256;
  $("ttft_slo_ms").value = d.ttft_slo_ms ?? "";
  $("itl_slo_ms").value = d.itl_slo_ms ?? "";
  const sw = $("objective");
  for (const [key, spec] of Object.entries(o.objectives)) {
    const b = el("button", { type: "button", "data-objective": key, title: spec.label, role: "radio",
      "aria-checked": String(key === state.objective), text: key });
    b.addEventListener("click", () => switchObjective(key));
    sw.append(b);
  }
  $("report-link").hidden = !o.report;
  $("electricity_usd_per_kwh").placeholder = `shipped ${o.electricity_usd_per_kwh}`;
  $("electricity-note").textContent = o.electricity_basis;
  renderModelStatus();
  renderApiHelp(o.api);
}

function renderApiHelp(api) {  // the routes' JSON fields, from the server's one mapping (service.api_fields)
  const box = $("api-fields");
  box.innerHTML = "";
  for (const [route, fields] of Object.entries(api || {})) {
    const table = el("table");
    const head = table.createTHead().insertRow();
    for (const h of ["field", "also", "CLI", "value"]) head.append(el("th", { class: "l", text: h }));
    const body = table.createTBody();
    for (const f of fields) {
      const row = body.insertRow();
      row.dataset.field = f.field;
      for (const v of [f.field, f.alias || "", f.cli, f.value]) row.append(el("td", { class: "l", text: v }));
    }
    box.append(el("h3", { text: `POST ${route}` }), table);
  }
}

// ------------------------------------------------------------------ the model in use

function shippedLabel() {
  return state.options && state.options.model_file === "a model file given at start"
    ? "the model file the server was started with" : "the shipped model";
}

function fittedLabel(f) {  // kept: what `fit --from default` kept (the server's comparison); null for a plain fit
  if (f.kept === "base") return `the shipped model as it is (fit --from default on ${f.rows} rows of ${f.file} kept it)`;
  return `fitted on ${f.rows} rows of ${f.file}` + ({ recalibrate: " (the shipped model recalibrated)",
    fresh: " (from scratch: fit --from default kept it over the shipped model and its recalibration)" }[f.kept] || "");
}

function modelInUse() {  // the model the next recommendation is priced with
  const fitted = Boolean(state.fitted && $("use-fitted").checked);
  return { fitted, label: fitted ? fittedLabel(state.fitted) : shippedLabel() };
}

function renderModelStatus() {
  const next = modelInUse();
  const article = next.fitted && !next.label.startsWith("the ") ? "the model " : "";
  $("model-status").textContent = `Recommendations are priced with ${article}${next.label}.`;
  const shown = state.resultModel;
  if (shown) {
    $("model-in-use").textContent = `Model: ${shown.label}` + (state.result ? `; coefficients of engine group ` +
      `'${state.result.attrs.engine}'` : "");
    $("use-shipped").hidden = !shown.fitted;
  }
}

function useShipped() {
  $("use-fitted").checked = false;
  renderModelStatus();
  if (state.result) recommend();
}

// ------------------------------------------------------------------ recommend

function requestBody() {  // every element with data-field="NAME" is the JSON field NAME (request.py's spelling)
  const body = { gpus: [...$("gpus").querySelectorAll("input:checked")].map((b) => b.value), objective: state.objective };
  for (const node of $("form").querySelectorAll("[data-field]")) {
    const value = node.value.trim();
    if (value) body[node.dataset.field] = value;
    else if (node.dataset.empty) body[node.dataset.field] = node.dataset.empty;
  }
  if (state.configId) body.config_id = state.configId;
  if (modelInUse().fitted) body.model_id = state.fitted.id;
  return body;
}

async function recommend({ scroll = true } = {}) {  // scroll: bring the results into view (not after a fit)
  showError("");
  $("submit").disabled = true;
  const model = modelInUse();
  try {
    state.result = await api("/api/recommend", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(requestBody()),
    });
    state.resultModel = model;
    state.selected = 0;
    markStale(false);
    await render();
    if (scroll) bringResultsIntoView();
  } catch (e) {
    showError(e.message);
    if (state.result) markStale(true);
  } finally {
    $("submit").disabled = false;
  }
}

function bringResultsIntoView() {  // beside the form on a desktop (already in view); below it on a phone
  const top = $("results").getBoundingClientRect().top;
  if (top < 0 || top > window.innerHeight * 0.5) $("results").scrollIntoView({ block: "start" });
}

function switchObjective(key) {
  state.objective = key;
  for (const b of $("objective").children) b.setAttribute("aria-checked", String(b.dataset.objective === key));
  if (state.result) recommend();
}

async function render() {
  const r = state.result;
  $("intro").hidden = true;
  $("results").hidden = false;
  const a = r.attrs, c = r.counts || {};
  $("summary").textContent = `${a.candidates} candidates, ${a.feasible} fit in memory, ${a.meeting_slo} meet the ` +
    `SLOs (${c.distinct ?? "?"} distinct layouts and ${c.copies ?? 0} data-parallel copies); ranked by ${r.metric_label}.`;
  $("table-title").textContent = `Ranked deployments by ${r.objective}`;
  renderModelStatus();
  renderUncertainty(r);
  renderTable(r);
  renderLegend(r);
  renderAssumptions(a.assumptions);
  await renderPlots(r);
}

function overlapText(r) {
  const others = r.rows.filter(hasInterval).length - 1, k = r.attrs.intervals_overlap;
  if (others <= 0 || k === null || k === undefined) return "";
  const what = r.objective === "cost" ? "their energy ranking" : "the ranking between them";
  if (k === 0) return `Its 95% interval overlaps none of the next ${others} deployments' intervals.`;
  return `The 95% intervals of the best and ${k === others ? "all" : k + " of"} the next ${others} deployments ` +
    `overlap: ${what} is uncertain.`;
}

function renderUncertainty(r) {
  const box = $("uncertainty");
  box.innerHTML = "";
  const best = r.table[0];
  if (!best) return;
  box.append(el("b", { text: `Best: #${rankLabel(best)} ${deployment(best)}` }),
    `: ${fmt(best.energy_request_j)} J/request` + (hasInterval(best) ? ` (95% interval ${intervalText(best)} J)` : "") +
    `, ${fmt(best.energy_token_j)} J/token. `);
  const overlap = overlapText(r);
  if (overlap) box.append(el("span", { id: "overlap", text: overlap }));
  const flagged = r.table.filter(extrapolates).length;
  if (flagged) {
    box.append(" ", el("span", { class: "warn", id: "extrap-count",
      text: `${flagged} of the ${r.table.length} listed deployments extrapolate: ${EXTRAP[1]} (marked ${EXTRAP[0]}; ` +
        "select a row for why)." }));
  }
}

function cell(row, col, r) {
  const td = el("td", { "data-key": col.key, class: [col.left ? "l" : "", col.more ? "more" : "",
    col.key === r.metric ? "objective" : ""].filter(Boolean).join(" ") });
  switch (col.key) {
    case "rank":
      td.textContent = rankLabel(row);
      if (row.replica_of_smaller) td.title = `a data-parallel copy of layout ${row.rank}: the same GPU, TP, PP, EP and ` +
        "batch per replica, so the same per-request figures";
      break;
    case "gpus": td.textContent = `${row.gpu} x${row.num_gpus}`; break;
    case "layout":  // may break after a '·' on a phone
      layout(row).split("·").forEach((part, i) => { if (i) td.append("·", el("wbr")); td.append(part); });
      break;
    case "interval": td.textContent = intervalText(row); break;
    case "main_term": td.textContent = mainTerm(row, r.terms); break;
    case "note":
      for (const [flag, short, meaning] of NOTES) if (row[flag]) td.append(el("span", { class: "badge", title: meaning, text: short }));
      if (extrapolates(row)) {
        td.append(el("span", { class: "badge extrap", title: `${EXTRAP[1]}: ${row.extrapolation}`, text: EXTRAP[0] }));
      }
      break;
    default: td.textContent = fmt(row[col.key]);
  }
  return td;
}

function renderTable(r) {
  const head = $("ranked").tHead, body = $("ranked").tBodies[0];
  head.innerHTML = ""; body.innerHTML = "";
  const tr = head.insertRow();
  for (const col of COLUMNS) {
    const th = el("th", { "data-key": col.key, class: [col.left ? "l" : "", col.more ? "more" : "",
      col.key === r.metric ? "objective" : ""].filter(Boolean).join(" ") });
    col.head.split("\n").forEach((part, i) => { if (i) th.append(el("br")); th.append(part); });
    tr.append(th);
  }
  r.table.forEach((row, i) => {
    const line = body.insertRow();
    line.dataset.index = String(i);
    line.tabIndex = 0;
    if (row.replica_of_smaller) line.classList.add("copy");
    if (extrapolates(row)) line.classList.add("extrapolates");
    if (i === state.selected) line.classList.add("selected");
    for (const col of COLUMNS) line.append(cell(row, col, r));
    const pick = () => selectRow(i);
    line.addEventListener("click", pick);
    line.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); pick(); } });
  });
  renderSelected(r);
}

async function selectRow(i) {
  state.selected = i;
  for (const line of $("ranked").tBodies[0].rows) line.classList.toggle("selected", line.dataset.index === String(i));
  renderSelected(state.result);
  await renderPlots(state.result);
}

function renderLegend(r) {  // what '#', '(k)' and the notes mean: one item each
  const c = r.counts || {}, items = [];
  let rank = "#: rank among distinct layouts, as `energylens recommend` numbers them";
  if (c.copies) {
    rank += `; ${c.copies} data-parallel ${c.copies === 1 ? "copy" : "copies"} of listed layouts (the same deployment ` +
      "replicated: same GPU, TP, PP, EP and batch per replica, so the same per-request figures) are not ranked on their own";
  }
  items.push(rank + ".");
  if (r.table.some((x) => x.replica_of_smaller)) {
    items.push("(k): such a data-parallel copy of layout k, listed for its note; its batch counts all replicas.");
  }
  const noted = NOTES.filter(([flag]) => r.table.some((x) => x[flag])).map(([, short, meaning]) => `${short}: ${meaning}`);
  if (r.table.some(extrapolates)) noted.push(`${EXTRAP[0]}: the prediction is ${EXTRAP[1]} (select the row for why)`);
  if (noted.length) items.push(noted.join("; ") + ".");
  items.push(`J/req 95%: the 95% interval of energy per request (the best ${r.rows.filter(hasInterval).length} rows).`);
  $("table-legend").replaceChildren(...items.map((text) => el("li", { text })));
}

function renderSelected(r) {
  const box = $("selected"), row = r.table[state.selected];
  box.innerHTML = "";
  if (!row) return;
  const power = row.power_per_gpu_w, gs = row.gpu_seconds_per_request;
  box.append(el("b", { text: `#${rankLabel(row)} ${deployment(row)}` }),
    `: ${fmt(row.energy_request_j)} J/request` + (hasInterval(row) ? ` (95% interval ${intervalText(row)} J)` : "") +
    `, ${fmt(row.energy_token_j)} J/token` + (power ? `; ${fmt(power)} W per GPU over ${fmt(gs)} GPU-seconds per request` : "") + ". ");
  if (extrapolates(row)) {
    box.append(el("span", { class: "warn", id: "selected-extrapolation", text: `Extrapolates (${EXTRAP[1]}): ${row.extrapolation}.` }));
  } else if (!hasInterval(row)) {
    box.append(el("span", { class: "note", text: "Ranked below the rows that get an interval: not checked for extrapolation." }));
  } else {
    box.append(el("span", { class: "note", text: "Inside the model's training data." }));
  }
  $("breakdown-title").textContent = `Where the energy of #${rankLabel(row)} goes`;
}

function renderAssumptions(assumptions) {
  const list = $("assumptions").querySelector("ul");
  list.innerHTML = "";
  for (const s of (assumptions && assumptions.statements) || []) list.append(el("li", { text: s }));
}

// ------------------------------------------------------------------ plots (width: their container's)

const SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json";  // an identifier; never fetched
const FIT = { type: "fit-x", contains: "padding", resize: true };

async function renderPlots(r) {
  const pareto = $("pareto");
  pareto.removeAttribute("data-objective");
  await Promise.all([renderPareto(r), renderBreakdown(r)]);
  pareto.setAttribute("data-objective", r.objective);  // tests wait on this: the plot of this objective is drawn
}

function renderPareto(r) {
  const sel = r.table[state.selected];
  const front = r.rows.filter((x) => x.on_front).sort((a, b) => a.latency_s - b.latency_s);
  $("plot-title").textContent = `${{ energy: "Energy", cost: "Cost", carbon: "Carbon" }[r.objective] || r.objective}` +
    "-latency Pareto front";
  const tooltip = [{ field: "gpu" }, { field: "num_gpus", title: "GPUs" }, { field: "tp" }, { field: "pp" },
    { field: "batch_size", title: "batch" }, { field: "latency_s", format: ".3g" }, { field: r.metric, format: ".4g" }];
  const x = { field: "latency_s", type: "quantitative", scale: { type: "log" }, title: "end-to-end latency per request (s)",
    axis: { format: "~g", labelOverlap: "greedy" } };
  const y = { field: r.metric, type: "quantitative", scale: { type: "log" }, title: r.metric_label,
    axis: { format: "~g", labelOverlap: "greedy" } };
  const spec = {
    $schema: SCHEMA, width: "container", height: NARROW.matches ? 240 : 300, autosize: FIT,
    layer: [
      { data: { values: r.rows.filter((p) => p[r.metric] !== null && p[r.metric] > 0) },
        mark: { type: "point", filled: true, size: 28, opacity: 0.55 },
        encoding: { x, y, tooltip, color: { field: "gpu", type: "nominal", title: "GPU",
          legend: NARROW.matches ? { orient: "bottom", direction: "horizontal", columns: 3 } : {} } } },
      { data: { values: front }, mark: { type: "line", color: "#333", strokeWidth: 1.5, point: false },
        encoding: { x: { field: "latency_s", type: "quantitative" }, y: { field: r.metric, type: "quantitative" } } },
      { data: { values: sel ? [sel] : [] }, mark: { type: "point", shape: "diamond", size: 160, color: "#000", filled: false, strokeWidth: 2 },
        encoding: { x: { field: "latency_s", type: "quantitative" }, y: { field: r.metric, type: "quantitative" }, tooltip } },
    ],
  };
  return vegaEmbed("#pareto", spec, { renderer: "svg", actions: false });
}

function renderBreakdown(r) {
  const row = r.table[state.selected];
  if (!row) return Promise.resolve();
  const values = Object.entries(r.terms)
    .map(([g, label]) => ({ term: label, share: row[`${g}_pct`] }))
    .filter((v) => v.share !== null && v.share !== 0);
  const spec = {
    $schema: SCHEMA, width: "container", height: 24 * values.length + 10, autosize: FIT,
    data: { values }, mark: { type: "bar", color: "#4c78a8" },
    encoding: { y: { field: "term", type: "nominal", sort: "-x", title: null },
      x: { field: "share", type: "quantitative", title: "share of energy per request (%)" },
      tooltip: [{ field: "term" }, { field: "share", format: ".1f" }] },
  };
  return vegaEmbed("#breakdown", spec, { renderer: "svg", actions: false });
}

// ------------------------------------------------------------------ uploads

async function uploadConfig() {
  const file = $("config-file").files[0];
  if (!file) return;
  showError("");
  const form = new FormData();
  form.append("file", file);
  try {
    const c = await api("/api/upload/config", { method: "POST", body: form });
    state.configId = c.config_id;
    $("model").add(new Option(`${c.name} (uploaded)`, c.name, true, true));
    $("config-note").textContent = `${c.name}: ${c.arch}, ${fmt(c.params_total_b, 3)} B parameters ` +
      `(${fmt(c.params_active_b, 3)} B active), ${c.layers} layers`;
  } catch (e) {
    state.configId = null;
    $("config-note").textContent = "";  // the note of an earlier upload no longer applies
    showError(e.message);
  }
}

async function fitProfile(event) {
  event.preventDefault();
  const file = $("profile-file").files[0];
  showError("", "fit-error");
  if (!file) { showError("choose a profiling CSV first", "fit-error"); return; }
  const form = new FormData();
  form.append("file", file);
  form.append("mode", $("fit-mode").value);
  $("fit-note").textContent = "fitting...";
  $("fit-submit").disabled = true;
  try {
    const f = await api("/api/upload/profile", { method: "POST", body: form });
    state.fitted = { id: f.model_id, rows: f.rows, file: file.name, mode: f.mode, kept: f.comparison ? f.comparison.kept : null };
    $("use-fitted").disabled = false;
    $("use-fitted").checked = true;
    renderFitNote(f);
    renderModelStatus();
    await renderParity(f);
    if (state.result) await recommend({ scroll: false });  // the ranking follows the model just fitted
  } catch (e) {
    showError(e.message, "fit-error");
    $("fit-note").textContent = "";  // the previous fit's figures and plot: cleared, not left as if they were this file's
    $("parity").replaceChildren();
    $("parity").removeAttribute("data-model");
  } finally {
    $("fit-submit").disabled = false;
  }
}

const percent = (v) => (v === null || v === undefined ? "n/a" : (100 * v).toFixed(1) + "%");  // the CLI's percent()

function renderFitNote(f) {
  // `fit --from default`: the three candidates' errors and the one kept, as the CLI prints them (_report_comparison).
  const lines = [];
  const c = f.comparison;
  if (c) {
    const parts = c.candidates.map((k) => (k.mape === null ? `${k.label}: needs more rows`
      : `${k.label} ${percent(k.mape)} MAPE (${k.folds ? `${k.folds}-fold CV` : "on every row (nothing fitted)"})`));
    const kept = c.candidates.find((k) => k.kept);
    lines.push(el("div", { id: "fit-comparison", text: `${f.command}: compared on ${f.rows} rows: ${parts.join("; ")}; ` +
      `kept ${kept.label} (the lowest cross-validated error).` }));
  }
  const mape = Object.entries(f.mape).map(([k, v]) => `${k} ${percent(v)}`).join(", ");
  // The structure's description may already count the fitted numbers (a fit's does): say it once.
  const count = `${f.fitted_numbers} fitted numbers`;
  const structure = f.structure.includes(count) ? f.structure : `${f.structure}; ${count}`;
  lines.push(el("div", { id: "fit-result", text: `${c ? "The model kept" : `${f.command}: fitted`} on ${f.rows} rows: ` +
    `energy MAPE (in sample) ${mape}; structure ${structure}.` }));
  $("fit-note").replaceChildren(...lines);
}

async function renderParity(f) {
  const values = f.parity;
  const all = values.flatMap((p) => [p.measured_j, p.predicted_j]).filter((v) => v > 0);
  const lo = Math.min(...all), hi = Math.max(...all);
  const axis = { format: "~s", labelOverlap: "greedy" };
  await vegaEmbed("#parity", {
    $schema: SCHEMA, width: "container", height: NARROW.matches ? 260 : 340, autosize: FIT,
    title: "Predicted vs measured energy per request",
    layer: [
      { data: { values: [{ x: lo, y: lo }, { x: hi, y: hi }] }, mark: { type: "line", color: "#888", strokeDash: [4, 4] },
        encoding: { x: { field: "x", type: "quantitative", scale: { type: "log" }, title: "measured (J)", axis },
          y: { field: "y", type: "quantitative", scale: { type: "log" }, title: "predicted (J)", axis } } },
      { data: { values }, mark: { type: "point", filled: true, opacity: 0.7 },
        encoding: { x: { field: "measured_j", type: "quantitative" }, y: { field: "predicted_j", type: "quantitative" },
          color: { field: "model", type: "nominal", title: "model", legend: { orient: "bottom" } },
          shape: { field: "model", type: "nominal" },
          tooltip: [{ field: "name" }, { field: "gpu" }, { field: "measured_j", format: ".4g" }, { field: "predicted_j", format: ".4g" }] } },
    ],
  }, { renderer: "svg", actions: false });
  $("parity").setAttribute("data-model", f.model_id);
}

async function main() {
  try {
    state.options = await api("/api/options");
    fillForm(state.options);
  } catch (e) {
    showError(e.message);
    return;
  }
  $("form").addEventListener("submit", (event) => { event.preventDefault(); recommend(); });
  $("config-file").addEventListener("change", uploadConfig);
  $("model").addEventListener("change", () => {
    if (!$("model").selectedOptions[0].text.endsWith("(uploaded)")) state.configId = null;
  });
  $("fit-form").addEventListener("submit", fitProfile);
  $("use-fitted").addEventListener("change", () => { renderModelStatus(); if (state.result) recommend({ scroll: false }); });
  $("use-shipped").addEventListener("click", useShipped);
  $("toggle-columns").addEventListener("click", () => {
    const all = $("table-wrap").classList.toggle("all");
    $("toggle-columns").setAttribute("aria-pressed", String(all));
    $("toggle-columns").textContent = all ? "key columns" : "all columns";
  });
  NARROW.addEventListener("change", () => { if (state.result) renderPlots(state.result); });  // legend placement
  document.body.setAttribute("data-ready", "true");
}

// Energy at a request rate (the "load" section): the form above plus a rate, answered by /api/recommend's `load`:
// one row per rate with the best layout there, its replicas and daily figures, and whether the saturation choice
// changes. Self-contained: it wires its own form.
(function loadSection() {
  const LOAD_COLUMNS = [["rate_rps", "req/s", 3], ["deployment", "best at this load", null], ["replicas", "replicas", 0],
    ["energy_request_j", "J/req", 4], ["kwh_per_day", "kWh/day", 4], ["usd_per_day", "$/day", 4],
    ["kgco2e_per_day", "kgCO2e/day", 4], ["utilization", "util %", 3], ["idle_energy_pct", "idle %", 3],
    ["ttft_ms", "TTFT ms", 4], ["tpot_ms", "ITL ms", 3], ["choice_changes", "choice vs saturation", null]];
  const DESCRIPTION = $("load-note").textContent;
  // The traffic of each rate, said once: 'Poisson R/s, <the rest>' per rate differ only in R when the rest agrees.
  function trafficText(traffic) {
    const sources = traffic.map((t) => t.source);
    const split = sources.map((s) => /^Poisson [^,]+\/s, (.*)$/.exec(s));
    if (sources.length > 1 && split.every((m) => m && m[1] === split[0][1])) {
      return `Poisson arrivals at each rate, ${split[0][1]}.`;
    }
    return [...new Set(sources)].join("; ");
  }
  async function submit(event) {
    event.preventDefault();
    const note = $("load-note"), head = $("load-table").tHead, body = $("load-table").tBodies[0];
    note.textContent = "simulating...";
    showError("", "load-error");
    $("load-submit").disabled = true;
    try {
      const request = { ...requestBody(), rate: $("rate").value.trim(), slo_percentile: $("slo_percentile").value };
      const r = await api("/api/recommend", { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify(request) });
      const load = r.load;
      head.innerHTML = ""; body.innerHTML = "";
      const tr = head.insertRow();
      for (const [, title] of LOAD_COLUMNS) { const th = document.createElement("th"); th.textContent = title; tr.append(th); }
      for (const row of load.curve) {
        const line = body.insertRow();
        for (const [field, , digits] of LOAD_COLUMNS) {
          const td = line.insertCell();
          let v = row[field];
          if (field === "utilization" && typeof v === "number") v *= 100;
          if (field === "choice_changes") v = v === null ? "saturation choice misses the SLOs" : v ? "changes" : "same";
          td.textContent = fmt(v, digits);
          if (digits === null) td.className = "l";
        }
      }
      note.textContent = `p${load.slo_percentile} SLOs; saturation ranking's choice: ${load.saturation_choice}. ` +
        trafficText(load.traffic);
      $("load-table").setAttribute("data-rates", String(load.curve.length));  // tests wait on this
    } catch (e) {
      showError(e.message, "load-error");
      note.textContent = DESCRIPTION;  // the previous table is gone: it answered other inputs
      head.innerHTML = ""; body.innerHTML = "";
      $("load-table").removeAttribute("data-rates");
    } finally {
      $("load-submit").disabled = false;
    }
  }
  $("load-form").addEventListener("submit", submit);
})();

main();
