// The console page: one screen at a time, chosen by the location's hash (#/programs,
// #/edit/<id>, #/new/<file>, #/explain, #/audit). Everything shown comes from /api as JSON and
// is put into the page as text, never as markup, so no program or person can inject any.
"use strict";

const state = { words: {}, lang: "ja", me: null, editor: null, schema: null, editing: null,
                charts: [], checkTimer: null, checkSeq: 0 };

function w(code, args) {
  const texts = state.words[code];
  let text = texts ? (texts[state.lang] || texts.en) : code;
  for (const [name, value] of Object.entries(args || {})) {
    text = text.split("{" + name + "}").join(String(value));
  }
  return text;
}

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function yen(amount) {
  return w("yen", { amount: Number(amount).toLocaleString(state.lang === "ja" ? "ja-JP" : "en-US") });
}

function num(value) {
  return Number(value).toLocaleString(state.lang === "ja" ? "ja-JP" : "en-US");
}

async function api(method, path, body) {
  const options = { method, headers: {}, credentials: "same-origin" };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify({ ...body, lang: state.lang });
  }
  const sep = path.includes("?") ? "&" : "?";
  const response = await fetch(path + sep + "lang=" + state.lang, options);
  const data = await response.json().catch(() => ({}));
  if (response.status === 401 && path !== "/api/session") {
    state.me = null;
    show("signin");
  }
  return { ok: response.ok, status: response.status, data };
}

function fillWords() {
  document.documentElement.lang = state.lang;
  document.title = w("title");
  for (const node of document.querySelectorAll("[data-w]")) node.textContent = w(node.dataset.w);
  if (state.me) {
    document.getElementById("who").textContent = w("signed_in_as", { name: state.me.name, place: state.me.place });
  }
}

function notice(text) { document.getElementById("notice").textContent = text || ""; }

function show(id) {
  for (const screen of document.querySelectorAll(".screen")) screen.hidden = screen.id !== id;
  const signedIn = Boolean(state.me);
  document.getElementById("nav").hidden = !signedIn;
  document.getElementById("signout").hidden = !signedIn;
  if (!signedIn) document.getElementById("who").textContent = "";
}

// ---- routing --------------------------------------------------------------------------

async function route() {
  notice("");
  if (!state.me) {
    const me = await api("GET", "/api/session");
    if (!me.ok) { show("signin"); return; }
    state.me = me.data;
    fillWords();
  }
  if (!state.schema) {
    const schema = await api("GET", "/api/schema");
    if (schema.ok) state.schema = schema.data;
  }
  const parts = location.hash.replace(/^#\/?/, "").split("/");
  const [screen, arg] = [parts[0] || "programs", decodeURIComponent(parts.slice(1).join("/"))];
  if (screen === "edit") return openProgram(arg);
  if (screen === "new") return newProgram(arg);
  if (screen === "explain") { await fillHistory(); return show("explain"); }
  if (screen === "audit") return showAudit();
  return showPrograms();
}

// ---- programs -------------------------------------------------------------------------

async function showPrograms() {
  const result = await api("GET", "/api/programs");
  if (!result.ok) return notice(result.data.message);
  document.getElementById("programs-title").textContent = w("programs_of", { place: state.me.place });
  const body = document.querySelector("#program-table tbody");
  body.replaceChildren();
  if (result.data.length === 0) {
    const row = body.insertRow();
    const cell = row.insertCell();
    cell.colSpan = 6;
    cell.textContent = w("no_programs");
  }
  for (const p of result.data) {
    const row = body.insertRow();
    for (const value of [p.id, p.name, p.type, "v" + p.version, p.file]) row.insertCell().textContent = value;
    const link = el("a", w("open"));
    link.href = "#/edit/" + encodeURIComponent(p.id);
    row.insertCell().append(link);
  }
  show("programs");
}

async function openProgram(id) {
  const result = await api("GET", "/api/programs/" + encodeURIComponent(id));
  if (!result.ok) { await showPrograms(); return notice(result.data.message); }
  state.editing = { program: id, file: result.data.file, newFile: null, sha256: result.data.sha256 };
  startEditor(result.data.text, result.data.file);
}

function newProgram(file) {
  state.editing = { program: null, file, newFile: file, sha256: null };
  const code = state.me.jurisdiction;
  const id = file.replace(/\.yaml$/, "");
  const text = [
    "# " + state.me.place,
    "id: " + code + "-" + id,
    "name: ",
    'jurisdiction: "' + code + '"',
    "on: [purchase]",
    "restriction: {persons: residents, stores: in_region}",
    "conditions:",
    "  period: {from: 2025-04-01, to: 2026-03-31}",
    "award: {kind: premium, rate: 20%, cap: 5000}",
    "budget: {yen: 10000000}",
    "",
  ].join("\n");
  startEditor(text, file);
}

function startEditor(text, name) {
  document.getElementById("edit-name").textContent = name;
  show("edit");
  for (const pane of document.querySelectorAll(".pane")) pane.hidden = true;
  document.getElementById("publish-result").textContent = "";
  document.getElementById("publish-appended").textContent = "";
  if (!state.editor) {
    state.editor = CodeMirror(document.getElementById("editor"), {
      value: text, mode: "yaml", lineNumbers: true, indentUnit: 2, tabSize: 2,
      extraKeys: { "Ctrl-Space": "autocomplete", Tab: (cm) => cm.execCommand("insertSoftTab") },
      gutters: ["CodeMirror-lint-markers"],
      lint: { getAnnotations: lintDraft, async: true, delay: 400 },
      hintOptions: { hint: schemaHint, completeSingle: false },
    });
  } else {
    state.editor.setValue(text);
    state.editor.clearHistory();
  }
  setTimeout(() => state.editor.refresh(), 0);
}

// ---- live checking --------------------------------------------------------------------

function lintDraft(text, updateLinting, options, cm) {
  const seq = ++state.checkSeq;
  document.getElementById("check-status").textContent = w("checking");
  api("POST", "/api/check", { text, name: state.editing ? state.editing.file : "draft.yaml" })
    .then((result) => {
      if (seq !== state.checkSeq) return;  // a later check is on its way
      if (!result.ok) { document.getElementById("check-status").textContent = result.data.message || ""; return; }
      const problems = result.data.problems;
      showProblems(problems);
      updateLinting(cm, problems.map((p) => {
        const line = Math.max(0, Math.min(cm.lineCount() - 1, p.line - 1));
        const message = p.field + ": " + p.message + (p.suggestion ? " (" + w("suggestion") + ": " + p.suggestion + ")" : "");
        return { from: CodeMirror.Pos(line, 0), to: CodeMirror.Pos(line, cm.getLine(line).length),
                 message, severity: p.severity === "warning" ? "warning" : "error" };
      }));
    });
}

function showProblems(problems) {
  const status = document.getElementById("check-status");
  status.textContent = problems.length ? w("problems", { count: problems.length }) : w("check_ok");
  status.className = problems.some((p) => p.severity === "error") ? "error" : "";
  const body = document.querySelector("#problems tbody");
  document.getElementById("problems").hidden = problems.length === 0;
  body.replaceChildren();
  for (const p of problems) {
    const row = body.insertRow();
    row.className = "severity-" + p.severity;
    for (const value of [p.line, p.field, p.message, p.suggestion || ""]) row.insertCell().textContent = value;
    row.addEventListener("click", () => {
      state.editor.focus();
      state.editor.setCursor({ line: p.line - 1, ch: 0 });
    });
  }
}

// ---- completion from the schema -------------------------------------------------------

function resolve(node) {
  const seen = new Set();
  while (node && node.$ref && !seen.has(node.$ref)) {
    seen.add(node.$ref);
    node = state.schema.$defs[node.$ref.split("/").pop()];
  }
  return node || {};
}

function alternatives(node) {
  node = resolve(node);
  const options = [node];
  for (const key of ["anyOf", "oneOf", "allOf"]) for (const alt of node[key] || []) options.push(...alternatives(alt));
  if (node.items) options.push(...alternatives(node.items));
  return options;
}

function propertiesAt(path) {
  let nodes = [state.schema];
  for (const key of path) {
    const next = [];
    for (const node of nodes) for (const alt of alternatives(node)) if (alt.properties && alt.properties[key]) next.push(alt.properties[key]);
    nodes = next;
  }
  const found = new Map();
  for (const node of nodes) for (const alt of alternatives(node)) for (const [name, prop] of Object.entries(alt.properties || {})) found.set(name, prop);
  return found;
}

function pathAt(cm, lineNo, indent) {
  const path = [];
  let want = indent;
  for (let i = lineNo - 1; i >= 0 && want > 0; i--) {
    const text = cm.getLine(i);
    const match = /^(\s*)(?:-\s+)?([A-Za-z_][\w-]*)\s*:/.exec(text);
    if (!match || !text.trim()) continue;
    const at = match[1].length;
    if (at < want) { path.unshift(match[2]); want = at; }
  }
  return path;
}

function schemaHint(cm) {
  if (!state.schema) return null;
  const cursor = cm.getCursor();
  const line = cm.getLine(cursor.line);
  const before = line.slice(0, cursor.ch);
  const value = /^(\s*)(?:-\s+)?([A-Za-z_][\w-]*)\s*:\s*(\S*)$/.exec(before);
  if (value) {  // after "key: ": the key's allowed values, when it has a list of them
    const props = propertiesAt(pathAt(cm, cursor.line, value[1].length));
    const prop = props.get(value[2]);
    const choices = prop ? alternatives(prop).flatMap((a) => a.enum || (a.const !== undefined ? [a.const] : [])) : [];
    if (!choices.length) return null;
    return { list: choices.map(String).filter((c) => c.startsWith(value[3])),
             from: CodeMirror.Pos(cursor.line, cursor.ch - value[3].length), to: cursor };
  }
  const key = /^(\s*)(?:-\s+)?([A-Za-z_]*)$/.exec(before);
  if (!key) return null;
  const props = propertiesAt(pathAt(cm, cursor.line, key[1].length));
  const list = [...props.entries()].filter(([name]) => name.startsWith(key[2])).map(([name, prop]) => ({
    text: name + ": ", displayText: name + (prop.description ? "  — " + prop.description.split(" / ")[state.lang === "ja" ? 0 : 1] : ""),
  }));
  return { list, from: CodeMirror.Pos(cursor.line, cursor.ch - key[2].length), to: cursor };
}

// ---- long runs ------------------------------------------------------------------------

async function runJob(kind, body, prefix, onDone) {
  const bar = document.getElementById(prefix + "-progress");
  const text = document.getElementById(prefix + "-progress-text");
  const out = document.getElementById(prefix + "-result");
  out.hidden = true;
  const started = await api("POST", "/api/" + kind, body);
  if (!started.ok) { text.textContent = started.data.message || ""; return; }
  bar.hidden = false;
  for (;;) {
    await new Promise((r) => setTimeout(r, 300));
    const job = await api("GET", "/api/jobs/" + started.data.job);
    if (!job.ok) { text.textContent = job.data.message || ""; bar.hidden = true; return; }
    const j = job.data;
    if (j.total) { bar.max = j.total; bar.value = j.done; } else { bar.removeAttribute("value"); }
    const stage = state.words["stage_" + j.label] ? w("stage_" + j.label) : (j.label || "");
    text.textContent = w("running", { done: stage + " " + (j.total ? Math.round(100 * j.done / j.total) + "%" : "") });
    if (j.state === "running") continue;
    bar.hidden = true;
    text.textContent = j.state === "failed" ? w("failed", { reason: j.error }) : "";
    if (j.state === "done") { out.hidden = false; onDone(j.result, out); }
    return;
  }
}

function list(id, items) {
  const node = document.getElementById(id);
  node.replaceChildren(...items.map((item) => el("li", item)));
}

function chart(canvas, config) {
  const made = new Chart(document.getElementById(canvas), config);
  state.charts.push(made);
  return made;
}

function showForecast(r) {
  for (const c of state.charts.splice(0)) c.destroy();
  const dl = document.getElementById("forecast-summary");
  dl.replaceChildren();
  for (const [label, value] of r.summary) { dl.append(el("dt", label), el("dd", value)); }
  list("forecast-warnings", r.warnings);
  document.getElementById("forecast-warnings-box").hidden = r.warnings.length === 0;
  list("forecast-assumptions", r.assumptions);
  const days = r.days.map((d) => d.day);
  const sets = [{ label: w("points_total"), data: r.days.map((d) => d.cumulative), borderColor: "#123a6b" }];
  if (r.days.some((d) => d.budget_left !== null)) sets.unshift({ label: w("budget"), data: r.days.map((d) => d.budget_left), borderColor: "#c0392b" });
  chart("chart-burndown", { type: "line", data: { labels: days, datasets: sets }, options: { animation: false, pointRadius: 0 } });
  chart("chart-providers", { type: "bar", data: { labels: r.providers.map((p) => p.provider),
    datasets: [{ label: w("points_total"), data: r.providers.map((p) => p.points), backgroundColor: "#2e86c1" }] }, options: { animation: false } });
  chart("chart-reached", { type: "line", data: { labels: days,
    datasets: [{ label: w("persons_reached"), data: r.days.map((d) => d.reached), borderColor: "#1e8449" }] }, options: { animation: false, pointRadius: 0 } });
}

function table(headers, rows) {
  const t = el("table");
  const head = t.createTHead().insertRow();
  for (const h of headers) head.append(el("th", h));
  const body = t.createTBody();
  for (const row of rows) {
    const tr = body.insertRow();
    for (const value of row) {
      const cell = tr.insertCell();
      cell.textContent = value;
      if (typeof value === "number" || /^[-+]?[\d,]+(円| yen)?$/.test(String(value))) cell.className = "num";
    }
  }
  return t;
}

function showSections(out, sections) {
  out.replaceChildren();
  for (const s of sections) {
    out.append(el("h3", s.title));
    if (s.lines) { const ul = el("ul"); for (const l of s.lines) ul.append(el("li", l)); out.append(ul); }
    if (s.rows) out.append(table(s.headers, s.rows));
  }
}

async function fillHistory() {
  const files = await api("GET", "/api/history");
  if (!files.ok) return;
  for (const select of document.querySelectorAll("select.history")) {
    const keep = select.value;
    select.replaceChildren();
    if (select.classList.contains("optional")) select.append(el("option", "—"));
    for (const f of files.data) {
      const option = el("option", f.name);
      option.value = f.name;
      select.append(option);
    }
    if (keep) select.value = keep;
    if (select.classList.contains("optional") && !keep) select.options[0].value = "";
  }
}

// ---- audit ----------------------------------------------------------------------------

async function showAudit() {
  const result = await api("GET", "/api/audit");
  if (!result.ok) return notice(result.data.message);
  const body = document.querySelector("#audit-table tbody");
  body.replaceChildren();
  for (const act of result.data) {
    const row = body.insertRow();
    const details = [act.program, act.file, act.version ? "v" + act.version : "", act.effective_from, act.reason, act.message]
      .filter((x) => x).join(" / ");
    for (const value of [act.at, act.who, w("action_" + act.action), details]) row.insertCell().textContent = value;
  }
  show("audit");
}

// ---- wiring ---------------------------------------------------------------------------

function formData(form) { return Object.fromEntries(new FormData(form).entries()); }

async function start() {
  const words = await (await fetch("/api/words")).json();
  state.words = words.words;
  state.lang = localStorage.getItem("pointengine.lang") || words.default;
  fillWords();
  document.getElementById("lang").addEventListener("click", () => {
    state.lang = state.lang === "ja" ? "en" : "ja";
    localStorage.setItem("pointengine.lang", state.lang);
    fillWords();
    route();
  });
  document.getElementById("signin-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const result = await api("POST", "/api/session", formData(event.target));
    const error = document.getElementById("signin-error");
    if (!result.ok) { error.textContent = result.data.message; return; }
    error.textContent = "";
    state.me = result.data;
    event.target.reset();
    fillWords();
    if (location.hash === "" || location.hash === "#/programs") route(); else location.hash = "#/programs";
  });
  document.getElementById("signout").addEventListener("click", async () => {
    await api("DELETE", "/api/session");
    state.me = null;
    show("signin");
  });
  document.getElementById("new-form").addEventListener("submit", (event) => {
    event.preventDefault();
    location.hash = "#/new/" + encodeURIComponent(formData(event.target).file);
  });
  for (const tab of document.querySelectorAll("[data-tab]")) {
    tab.addEventListener("click", async () => {
      for (const pane of document.querySelectorAll(".pane")) pane.hidden = pane.id !== tab.dataset.tab;
      if (tab.dataset.tab === "compare-pane") await fillHistory();
    });
  }
  document.getElementById("forecast-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const f = formData(event.target);
    runJob("forecast", { text: state.editor.getValue(), name: state.editing.file.split("/").pop(),
      persons: Number(f.persons), events: Number(f.events), seed: Number(f.seed) }, "forecast", showForecast);
  });
  document.getElementById("compare-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const f = formData(event.target);
    runJob("compare", { text: state.editor.getValue(), name: state.editing.file.split("/").pop(),
      events: f.events, paid: f.paid || null }, "compare", (r, out) => showSections(out, r.sections));
  });
  document.getElementById("explain-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const f = formData(event.target);
    runJob("explain", { person: f.person, events: f.events, ledger: f.ledger || null }, "explain",
      (r, out) => showSections(out, r.sections));
  });
  document.getElementById("publish-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const f = formData(event.target);
    const body = { text: state.editor.getValue(), reason: f.reason,
      effective_from: f.effective_from + ":00+09:00",
      program: state.editing.program, new_file: state.editing.newFile,
      opened_sha256: state.editing.sha256 };
    const result = await api("POST", "/api/publish", body);
    const out = document.getElementById("publish-result");
    out.className = result.ok ? "" : "error";
    out.textContent = result.ok ? w("published", result.data) : result.data.message;
    document.getElementById("publish-appended").textContent = result.ok ? result.data.appended : "";
    if (result.ok) state.editing = { program: result.data.program, file: result.data.file, newFile: null, sha256: result.data.sha256 };
  });
  window.addEventListener("hashchange", route);
  await route();
}

document.addEventListener("DOMContentLoaded", start);
