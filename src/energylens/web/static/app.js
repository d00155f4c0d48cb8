// EnergyLens explorer: a form, the ranked deployments, the Pareto front coloured by GPU, the per-term
// breakdown of the selected row, the objective switch, and a parity plot of a fit on uploaded measurements.
// Plain JavaScript over the JSON API (/api/*) and the vendored Vega-Lite; no build step.
"use strict";

const state = { options: null, objective: "energy", result: null, selected: 0, configId: null, modelId: null };
const $ = (id) => document.getElementById(id);
const COLUMNS = [  // [field, header, digits]; the objective's column is highlighted
  ["rank", "#", 0], ["gpu", "GPU", null], ["num_gpus", "n", 0], ["tp", "TP", 0], ["pp", "PP", 0], ["ep", "EP", 0],
  ["dp", "DP", 0], ["batch_size", "batch", 0], ["energy_request_j", "J/req", 4],
  ["cost_usd_per_million_tokens", "$/M out tok", 3], ["carbon_gco2e_per_1000_requests", "gCO2e/1k req", 4],
  ["ttft_ms", "TTFT ms", 4], ["itl_ms", "ITL ms", 3], ["latency_s", "latency s", 3],
];

function fmt(v, digits) {
  if (v === null || v === undefined || Number.isNaN(v)) return "";
  if (typeof v !== "number") return String(v);
  if (digits === 0) return String(Math.round(v));
  return Math.abs(v) >= 1e5 || (Math.abs(v) < 1e-2 && v !== 0) ? v.toExponential(2) : v.toPrecision(digits);
}

async function api(path, options) {
  const response = await fetch(path, options);
  let body = null;
  try { body = await response.json(); } catch (e) { body = { error: `HTTP ${response.status}` }; }
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

function showError(message) {
  const box = $("error");
  box.textContent = message || "";
  box.hidden = !message;
}

function fillForm(o) {
  const models = $("model");
  for (const m of o.models) models.add(new Option(m, m, false, m === "meta-llama/Llama-3.1-8B"));
  const pool = $("gpus");
  for (const g of o.gpus) {
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox"; box.value = g; box.checked = g === "H100-SXM" || g === "B200";
    label.append(box, " " + g);
    pool.append(label);
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
    const b = document.createElement("button");
    b.type = "button"; b.dataset.objective = key; b.textContent = key; b.title = spec.label;
    b.setAttribute("role", "radio");
    b.setAttribute("aria-checked", String(key === state.objective));
    b.addEventListener("click", () => switchObjective(key));
    sw.append(b);
  }
  $("report-link").hidden = !o.report;
  $("electricity_usd_per_kwh").placeholder = `shipped ${o.electricity_usd_per_kwh}`;
  $("electricity-note").textContent = o.electricity_basis;
  renderApiHelp(o.api);
}

function renderApiHelp(api) {  // the routes' JSON fields, from the server's one mapping (service.RECOMMEND_FIELDS)
  const box = $("api-fields");
  box.innerHTML = "";
  for (const [route, fields] of Object.entries(api || {})) {
    const title = document.createElement("h3");
    title.textContent = `POST ${route}`;
    const table = document.createElement("table");
    const head = table.createTHead().insertRow();
    for (const h of ["field", "also", "CLI", "value"]) {
      const th = document.createElement("th");
      th.className = "l"; th.textContent = h; head.append(th);
    }
    const body = table.createTBody();
    for (const f of fields) {
      const row = body.insertRow();
      row.dataset.field = f.field;
      for (const v of [f.field, f.alias || "", f.cli, f.value]) {
        const td = row.insertCell();
        td.className = "l"; td.textContent = v;
      }
    }
    box.append(title, table);
  }
}

function requestBody() {
  const text = (id) => $(id).value.trim();
  const body = {
    model: $("model").value, gpus: [...$("gpus").querySelectorAll("input:checked")].map((b) => b.value),
    max_gpus: text("max_gpus"), input_tokens: text("input_tokens"), output_tokens: text("output_tokens"),
    ttft_slo_ms: text("ttft_slo_ms") || "none", itl_slo_ms: text("itl_slo_ms") || "none",
    objective: state.objective, region: $("region").value,
  };
  for (const id of ["batches", "gpu_hour_usd", "electricity_usd_per_kwh", "pue"]) if (text(id)) body[id] = text(id);
  if (state.configId) body.config_id = state.configId;
  if (state.modelId && $("use-fitted").checked) body.model_id = state.modelId;
  return body;
}

async function recommend() {
  showError("");
  $("submit").disabled = true;
  try {
    state.result = await api("/api/recommend", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(requestBody()),
    });
    state.selected = 0;
    await render();
  } catch (e) {
    showError(e.message);
  } finally {
    $("submit").disabled = false;
  }
}

function switchObjective(key) {
  state.objective = key;
  for (const b of $("objective").children) b.setAttribute("aria-checked", String(b.dataset.objective === key));
  if (state.result) recommend();
}

async function render() {
  const r = state.result;
  $("results").hidden = false;
  const a = r.attrs;
  $("summary").textContent = `${a.candidates} candidates, ${a.feasible} feasible, ${a.meeting_slo} meeting the SLOs; ` +
    `ranked by ${r.metric_label}; coefficients: ${a.engine}.`;
  $("table-title").textContent = `Ranked deployments by ${r.objective}`;
  renderTable(r);
  renderAssumptions(a.assumptions);
  const pareto = $("pareto");
  pareto.removeAttribute("data-objective");
  await Promise.all([renderPareto(r), renderBreakdown(r)]);
  pareto.setAttribute("data-objective", r.objective);  // tests wait on this: the plot of this objective is drawn
}

function renderTable(r) {
  const head = $("ranked").tHead, body = $("ranked").tBodies[0];
  head.innerHTML = ""; body.innerHTML = "";
  const tr = head.insertRow();
  for (const [field, title] of [...COLUMNS, ["note", "note"]]) {
    const th = document.createElement("th");
    th.textContent = title;
    th.className = (field === "gpu" || field === "note" ? "l " : "") + (field === r.metric ? "objective" : "");
    tr.append(th);
  }
  r.table.forEach((row, i) => {
    const line = body.insertRow();
    line.dataset.index = String(i);
    if (i === state.selected) line.classList.add("selected");
    for (const [field, , digits] of COLUMNS) {
      const td = line.insertCell();
      // rank: among distinct layouts; a data-parallel copy shows the rank of the layout it copies as (k)
      td.textContent = field === "rank" && row.replica_of_smaller ? `(${row.rank})` : fmt(row[field], digits);
      if (field === "gpu") td.className = "l";
      if (field === r.metric) td.classList.add("objective");
    }
    const note = line.insertCell();
    note.className = "l";
    note.textContent = row.latency_optimal ? "latency-optimal" : row.tp_default ? "all-GPU TP default" : "";
    line.addEventListener("click", () => { state.selected = i; renderTable(r); renderBreakdown(r); renderPareto(r); });
  });
}

function renderAssumptions(assumptions) {
  const list = $("assumptions").querySelector("ul");
  list.innerHTML = "";
  for (const s of (assumptions && assumptions.statements) || []) {
    const li = document.createElement("li");
    li.textContent = s;
    list.append(li);
  }
}

function renderPareto(r) {
  const sel = r.table[state.selected];
  const front = r.rows.filter((x) => x.on_front).sort((a, b) => a.latency_s - b.latency_s);
  const label = r.metric_label;
  $("plot-title").textContent = `${r.objective === "energy" ? "Energy" : r.objective === "cost" ? "Cost" : "Carbon"}-latency Pareto front`;
  const tooltip = [{ field: "gpu" }, { field: "num_gpus", title: "GPUs" }, { field: "tp" }, { field: "pp" },
    { field: "batch_size", title: "batch" }, { field: "latency_s", format: ".3g" }, { field: r.metric, format: ".4g" }];
  const spec = {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json", width: "container", height: 300,
    layer: [
      { data: { values: r.rows.filter((x) => x[r.metric] !== null && x[r.metric] > 0) }, mark: { type: "point", filled: true, size: 28, opacity: 0.55 },
        encoding: { x: { field: "latency_s", type: "quantitative", scale: { type: "log" }, title: "end-to-end latency per request (s)",
            axis: { format: "~g", labelOverlap: "greedy" } },
          y: { field: r.metric, type: "quantitative", scale: { type: "log" }, title: label,
            axis: { format: "~g", labelOverlap: "greedy" } },
          color: { field: "gpu", type: "nominal", title: "GPU" }, tooltip } },
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
    $schema: "https://vega.github.io/schema/vega-lite/v6.json", width: "container", height: 24 * values.length + 20,
    title: `#${row.rank}: ${row.gpu} x${row.num_gpus} tp${row.tp} pp${row.pp} ep${row.ep} dp${row.dp} batch ${row.batch_size}, ${fmt(row.energy_request_j, 4)} J/request`,
    data: { values }, mark: { type: "bar", color: "#4c78a8" },
    encoding: { y: { field: "term", type: "nominal", sort: "-x", title: null },
      x: { field: "share", type: "quantitative", title: "share of energy per request (%)" },
      tooltip: [{ field: "term" }, { field: "share", format: ".1f" }] },
  };
  return vegaEmbed("#breakdown", spec, { renderer: "svg", actions: false });
}

async function uploadConfig() {
  const file = $("config-file").files[0];
  if (!file) return;
  showError("");
  const form = new FormData();
  form.append("file", file);
  try {
    const c = await api("/api/upload/config", { method: "POST", body: form });
    state.configId = c.config_id;
    const opt = new Option(`${c.name} (uploaded)`, c.name, true, true);
    $("model").add(opt);
    $("config-note").textContent = `${c.name}: ${c.arch}, ${fmt(c.params_total_b, 3)} B parameters ` +
      `(${fmt(c.params_active_b, 3)} B active), ${c.layers} layers`;
  } catch (e) {
    state.configId = null;
    showError(e.message);
  }
}

async function fitProfile(event) {
  event.preventDefault();
  const file = $("profile-file").files[0];
  if (!file) { $("fit-note").textContent = "choose a profiling CSV first"; return; }
  const form = new FormData();
  form.append("file", file);
  form.append("mode", $("fit-mode").value);
  $("fit-note").textContent = "fitting...";
  $("fit-submit").disabled = true;
  try {
    const f = await api("/api/upload/profile", { method: "POST", body: form });
    state.modelId = f.model_id;
    $("use-fitted").disabled = false;
    $("use-fitted").checked = true;
    const mape = Object.entries(f.mape).map(([k, v]) => `${k} ${v === null ? "n/a" : (100 * v).toFixed(1) + "%"}`).join(", ");
    $("fit-note").textContent = `${f.mode} on ${f.rows} rows: energy MAPE (in sample) ${mape}; structure ${f.structure}; ` +
      `${f.fitted_numbers} fitted numbers.`;
    const values = f.parity;
    const all = values.flatMap((p) => [p.measured_j, p.predicted_j]).filter((v) => v > 0);
    const lo = Math.min(...all), hi = Math.max(...all);
    await vegaEmbed("#parity", {
      $schema: "https://vega.github.io/schema/vega-lite/v6.json", width: 420, height: 360,
      title: "Predicted vs measured energy per request",
      layer: [
        { data: { values: [{ x: lo, y: lo }, { x: hi, y: hi }] }, mark: { type: "line", color: "#888", strokeDash: [4, 4] },
          encoding: { x: { field: "x", type: "quantitative", scale: { type: "log" }, title: "measured (J)",
              axis: { format: "~s", labelOverlap: "greedy" } },
            y: { field: "y", type: "quantitative", scale: { type: "log" }, title: "predicted (J)",
              axis: { format: "~s", labelOverlap: "greedy" } } } },
        { data: { values }, mark: { type: "point", filled: true, opacity: 0.7 },
          encoding: { x: { field: "measured_j", type: "quantitative" }, y: { field: "predicted_j", type: "quantitative" },
            color: { field: "model", type: "nominal", title: "model" }, shape: { field: "model", type: "nominal" },
            tooltip: [{ field: "name" }, { field: "gpu" }, { field: "measured_j", format: ".4g" }, { field: "predicted_j", format: ".4g" }] } },
      ],
    }, { renderer: "svg", actions: false });
    $("parity").setAttribute("data-model", f.model_id);
  } catch (e) {
    $("fit-note").textContent = e.message;
  } finally {
    $("fit-submit").disabled = false;
  }
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
  async function submit(event) {
    event.preventDefault();
    const note = $("load-note"), head = $("load-table").tHead, body = $("load-table").tBodies[0];
    note.textContent = "simulating...";
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
        load.traffic.map((t) => t.source).join("; ");
      $("load-table").setAttribute("data-rates", String(load.curve.length));  // tests wait on this
    } catch (e) {
      note.textContent = e.message;
    } finally {
      $("load-submit").disabled = false;
    }
  }
  $("load-form").addEventListener("submit", submit);
})();

main();
