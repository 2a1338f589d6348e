// kv serve's page. It polls the server and redraws: the picture (/api/draw.svg), the
// summary and the counters (/api/structure?brief=true, whose `stats` is what /api/stats
// answers), and keeps the last two minutes of amplification for the charts. The controls
// POST to the JSON API and show its answer in #status.
"use strict";

const POLL_MS = 500;          // the wait between one poll's answers and the next poll
const HISTORY = 240;          // points kept for the charts: 2 minutes at 2 polls a second
const TABLES_LISTED = 8;      // tables listed per level in the summary; the rest are counted
const SEGMENTS_LISTED = 16;   // value-log segments listed in the summary; the rest are counted

const $ = (id) => document.getElementById(id);
const history = [];           // {t, write_amp, space_amp, disk_bytes, live_data_bytes}

// ---------------------------------------------------------------- numbers as text

function bytes(n) {
  if (n == null) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return i === 0 ? `${n} B` : `${n.toFixed(1)} ${units[i]}`;
}

const count = (n) => (n == null ? "–" : n.toLocaleString("en"));
const ratio = (x) => (x == null ? "–" : x.toFixed(2));
const plural = (n, one, many = `${one}s`) => `${count(n)} ${n === 1 ? one : many}`;
const span = (keys) => (keys ? `${keys.first} .. ${keys.last}` : "(empty)");
const pad = (text, width) => String(text).padEnd(width);

// ---------------------------------------------------------------- the summary, per stage

function fileLine(f) {
  const parts = [pad(f.name, 16), pad(bytes(f.bytes), 10)];
  if (f.live_bytes != null) parts.push(`live ${bytes(f.live_bytes)}`);
  if (f.dead_bytes != null) parts.push(`dead ${bytes(f.dead_bytes)}`);
  if (f.entries != null) parts.push(plural(f.entries, "record"));
  if (f.hint) parts.push(`hint ${f.hint}`);
  if (f.note) parts.push(`(${f.note})`);
  return "  " + parts.join("  ");
}

function tableLine(t) {
  const parts = [pad(t.name, 12), pad(bytes(t.bytes), 10), pad(plural(t.entries, "entry", "entries"), 14), span(t.keys)];
  if (t.filter_bytes != null) parts.push(`filter ${bytes(t.filter_bytes)}`);
  if (t.note) parts.push(`(${t.note})`);
  return "    " + parts.join("  ");
}

function tableLines(tables) {
  const lines = tables.slice(0, TABLES_LISTED).map(tableLine);
  if (tables.length > TABLES_LISTED) lines.push(`    … and ${tables.length - TABLES_LISTED} more`);
  return lines;
}

function memtableLines(m) {
  const fill = m.capacity_bytes != null ? ` of ${bytes(m.capacity_bytes)}` : "";
  const frozen = m.immutable ? `, ${m.immutable} frozen waiting for their flush` : "";
  const keys = m.keys ? `, ${span(m.keys)}` : "";
  const lines = [`memtable  ${bytes(m.bytes)}${fill}${frozen}; its WALs replay to ${plural(m.entries, "entry", "entries")}${keys}`];
  for (const wal of m.wals) lines.push(fileLine(wal));
  return lines;
}

function mergeLine(word, merge) {
  if (!merge) return `${word}: none in the directory`;
  const state = merge.committed ? "committed" : "in progress";
  return `${word} ${state}: ${merge.inputs.join(", ") || "–"} -> ${merge.outputs.join(", ") || "–"}`;
}

function indexLine(index) {
  const memory = index.memory_bytes != null ? `, ~${bytes(index.memory_bytes)} of memory` : "";
  return `index  ${plural(index.keys, "key")}, ${bytes(index.data_bytes)} of keys and values${memory}`;
}

const SUMMARIES = {
  hashlog: (s) => [
    "log",
    s.log ? fileLine(s.log) : "  (no data file yet)",
    indexLine(s.index),
  ],
  bitcask: (s) => [
    `segments  ${s.segments.length}, hint files ${s.hint_files.length}, merges since open ${s.merges}`,
    ...s.segments.map(fileLine),
    mergeLine("merge", s.merge),
    indexLine(s.index),
  ],
  sstable: (s) => [
    ...memtableLines(s.memtable),
    `tables  ${s.tables.length}  (flushes ${s.flushes}, compactions ${s.compactions} since open)`,
    ...tableLines(s.tables),
    mergeLine("compaction", s.compaction),
  ],
  lsm: (s) => treeLines(s),
  wisckey: (s) => [
    "tree  keys, each with a 17-byte pointer into the value log or a small value itself",
    ...treeLines(s),
    ...valueLogLines(s.value_log),
    gcLine(s.gc),
  ],
};

// An LSM tree's lines: memtable, levels with their tables, compaction, block cache.
function treeLines(s) {
  const lines = memtableLines(s.memtable);
  const deepest = s.levels.reduce((d, l) => (l.tables.length ? l.level : d), 0);
  for (const l of s.levels.filter((l) => l.level <= deepest)) {
    const target = l.target_bytes != null ? `target ${bytes(l.target_bytes)}` : (l.level === 0 ? "trigger: a table count" : "no target");
    lines.push(`L${l.level}  ${pad(plural(l.tables.length, "table"), 10)}  ${pad(bytes(l.bytes), 10)}  ${target}`);
    lines.push(...tableLines(l.tables));
  }
  const c = s.compaction;
  const running = c.unplaced_tables.length ? `writing or deleting ${c.unplaced_tables.join(", ")}` : "idle";
  lines.push(`compaction  ${running}; ${c.flushes} flushes, ${c.compactions} compactions (${c.trivial_moves} moves), read ${bytes(c.bytes_read)}, wrote ${bytes(c.bytes_written)}`);
  const b = s.block_cache;
  const rate = b.hit_rate == null ? "no lookups yet" : `${(100 * b.hit_rate).toFixed(1)}% hits`;
  lines.push(`block cache  ${rate} (${count(b.hits)} hits, ${count(b.misses)} misses), ${bytes(b.bytes)} of ${bytes(b.capacity_bytes)}`);
  return lines;
}

// A wisckey value log's lines: its bytes, live and dead where known, then its segments.
function valueLogLines(v) {
  const liveness = v.live_bytes != null
    ? `live ${bytes(v.live_bytes)}, dead ${bytes(v.dead_bytes)}`
    : "liveness not computed (a large tree)";
  const lines = [
    `value log  ${plural(v.segments.length, "segment")}, ${bytes(v.bytes)}: ${liveness}; ` +
      `the engine knows of ${bytes(v.dead_bytes_known)} dead; ` +
      `live values: ${count(v.values_inline)} in the tree, ${count(v.values_in_log)} in the log`,
    ...v.segments.slice(0, SEGMENTS_LISTED).map(fileLine),
  ];
  if (v.segments.length > SEGMENTS_LISTED) lines.push(`  … and ${v.segments.length - SEGMENTS_LISTED} more`);
  return lines;
}

function gcLine(g) {
  const errors = g.errors ? `, ${plural(g.errors, "error")}` : "";
  return `garbage collection  ${plural(g.runs, "run")}, ${plural(g.segments_deleted, "segment")} deleted, ` +
    `${plural(g.values_relocated, "value")} moved (${bytes(g.bytes_relocated)})${errors}`;
}

function showSummary(answer) {
  const pre = $("summary");
  const s = answer.summary;
  pre.textContent = s ? SUMMARIES[s.stage](s).join("\n") : answer.note || "no structure";
  // For scripts and tests: tables and entries per level, entries the WALs hold, segments.
  const levels = s && s.levels ? s.levels : [];
  pre.dataset.levels = levels.map((l) => `L${l.level}:${l.tables.length}`).join(" ");
  const entries = (l) => l.tables.reduce((sum, t) => sum + (t.entries || 0), 0);
  pre.dataset.entries = levels.map((l) => `L${l.level}:${entries(l)}`).join(" ");
  pre.dataset.memtable = s && s.memtable ? String(s.memtable.entries) : "";
  pre.dataset.segments = s && s.value_log ? String(s.value_log.segments.length) : "";
  pre.dataset.files = answer.structure ? String(answer.structure.files.length) : "";
}

// ---------------------------------------------------------------- counters and charts

function showStats(stats) {
  const rows = [
    ["live keys", count(stats.live_keys)],
    ["live data", bytes(stats.live_data_bytes)],
    ["on disk", `${bytes(stats.disk_bytes)} in ${plural(stats.file_count, "file")}`],
    ["written by users", bytes(stats.user_bytes_written)],
    ["written to disk", bytes(stats.disk_bytes_written)],
    ["write amplification", ratio(stats.write_amp)],
    ["space amplification", ratio(stats.space_amp)],
    ["read amplification", ratio(stats.read_amp)],
  ];
  const body = $("stats").tBodies[0];
  body.replaceChildren(...rows.map(([name, value]) => {
    const tr = document.createElement("tr");
    for (const text of [name, value]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.append(td);
    }
    return tr;
  }));
}

const SVG = "http://www.w3.org/2000/svg";

function svgElement(name, attributes, text) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attributes)) e.setAttribute(k, v);
  if (text != null) e.textContent = text;
  return e;
}

// Draws `series` ([{name, colour, key}]) of `history` in the chart `svg`: time along, from
// the oldest point kept (at most two minutes ago) to now; values up, from 0 to the largest
// shown, labelled by `format`.
function chart(svg, series, format) {
  const [left, top, width, height] = [60, 8, 290, 112];
  const values = history.flatMap((p) => series.map((s) => p[s.key])).filter((v) => v != null);
  const most = Math.max(1e-9, ...values);
  const [first, last] = [history[0].t, history[history.length - 1].t];
  const x = (t) => left + (last > first ? (width * (t - first)) / (last - first) : width);
  const y = (v) => top + height - (height * v) / most;
  const parts = [
    svgElement("line", { x1: left, y1: top + height, x2: left + width, y2: top + height, stroke: "#999" }),
    svgElement("line", { x1: left, y1: top, x2: left, y2: top + height, stroke: "#999" }),
    svgElement("text", { x: left - 4, y: top + 8, "text-anchor": "end" }, values.length ? format(most) : ""),
    svgElement("text", { x: left - 4, y: top + height, "text-anchor": "end" }, format(0)),
    svgElement("text", { x: left, y: top + height + 12 }, `${((last - first) / 1000).toFixed(0)} s ago`),
    svgElement("text", { x: left + width, y: top + height + 12, "text-anchor": "end" }, "now"),
  ];
  series.forEach((s, n) => {
    const points = history
      .filter((p) => p[s.key] != null)
      .map((p) => `${x(p.t).toFixed(1)},${y(p[s.key]).toFixed(1)}`);
    parts.push(svgElement("polyline", { points: points.join(" "), fill: "none", stroke: s.colour, "stroke-width": 2 }));
    const at = left + n * 130;
    parts.push(svgElement("rect", { x: at, y: 140, width: 10, height: 4, fill: s.colour }));
    parts.push(svgElement("text", { x: at + 14, y: 146 }, s.name));
  });
  svg.replaceChildren(...parts);
}

function showCharts(stats) {
  history.push({
    t: Date.now(),
    write_amp: stats.write_amp,
    space_amp: stats.space_amp,
    disk_bytes: stats.disk_bytes,
    live_data_bytes: stats.live_data_bytes,
  });
  if (history.length > HISTORY) history.shift();
  chart($("chart-amp"), [
    { name: "write amplification", colour: "#4e79a7", key: "write_amp" },
    { name: "space amplification", colour: "#e15759", key: "space_amp" },
  ], (v) => v.toFixed(1));
  chart($("chart-disk"), [
    { name: "bytes on disk", colour: "#f28e2b", key: "disk_bytes" },
    { name: "live bytes", colour: "#59a14f", key: "live_data_bytes" },
  ], bytes);
}

// ---------------------------------------------------------------- polling

async function errorText(response) {
  const text = await response.text();
  try { return JSON.parse(text).error || text; } catch { return text; }
}

async function refreshStructure() {
  const response = await fetch("/api/structure?brief=true", { cache: "no-store" });
  if (!response.ok) throw new Error(`structure: ${response.status} ${await errorText(response)}`);
  const answer = await response.json();
  showSummary(answer);
  showStats(answer.stats);
  showCharts(answer.stats);
}

let shownSvg = null;    // the picture's markup as served, to replace it only when it changed

async function refreshPicture() {
  const response = await fetch("/api/draw.svg", { cache: "no-store" });
  const picture = $("picture");
  if (!response.ok) {
    picture.textContent = await errorText(response);
    return;
  }
  const svg = await response.text();
  if (svg !== shownSvg) {
    picture.innerHTML = svg;
    shownSvg = svg;
    picture.dataset.changes = String(Number(picture.dataset.changes) + 1);
  }
}

let timer = null;       // the next poll, while waiting for it
let polling = false;    // a poll's requests are out

async function poll() {
  clearTimeout(timer);
  polling = true;
  const live = $("live");
  try {
    await Promise.all([refreshStructure(), refreshPicture()]);
    live.dataset.polls = String(Number(live.dataset.polls) + 1);
    live.textContent = `live: every ${POLL_MS} ms, last at ${new Date().toLocaleTimeString()}`;
  } catch (e) {
    live.textContent = `not answering: ${e.message}`;
  } finally {
    polling = false;
  }
  timer = setTimeout(poll, POLL_MS);
}

// Polls now rather than at the next tick (after a control's answer), unless a poll is out.
function pollNow() {
  if (!polling) poll();
}

// ---------------------------------------------------------------- controls

// POSTs `path` (with `params`), shows its answer in #status, and keeps every control
// disabled meanwhile so one click is one request. Answers whether the request succeeded.
async function post(path, params) {
  const query = new URLSearchParams(params).toString();
  const url = query ? `${path}?${query}` : path;
  const status = $("status");
  const buttons = document.querySelectorAll("#controls button");
  buttons.forEach((b) => { b.disabled = true; });
  status.dataset.state = "busy";
  status.textContent = `POST ${url} …`;
  try {
    const response = await fetch(url, { method: "POST" });
    const text = response.ok ? await response.text() : await errorText(response);
    status.dataset.state = response.ok ? "ok" : "error";
    status.textContent = `POST ${url}: ${response.status} ${text}`;
    return response.ok;
  } catch (e) {
    status.dataset.state = "error";
    status.textContent = `POST ${url}: ${e.message}`;
    return false;
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
    pollNow();
  }
}

const FILL_STEPS = 10;        // a fill is written in this many requests ...
const STEP_PAUSE_MS = 300;    // ... with a redraw and this pause after each

// Writes `n` random keys in FILL_STEPS requests, redrawing after each: one request would
// write them all between two polls, and the page would jump from before to after. In
// steps, a small memtable fills, is flushed into an L0 table, and compactions move tables
// down while you watch. Stops at the first request that fails.
async function fillInSteps(n) {
  const step = Math.max(1, Math.ceil(n / FILL_STEPS));
  const fill = $("fill");
  for (let written = 0; written < n; ) {
    const size = Math.min(step, n - written);
    fill.dataset.step = `${count(written + size)} of ${count(n)}`;
    if (!(await post("/api/fill", { n: size }))) break;
    written += size;
    await poll();
    await new Promise((resolve) => setTimeout(resolve, STEP_PAUSE_MS));
  }
  delete fill.dataset.step;
}

function fillLabel() {
  const n = Number($("fill-n").value);
  $("fill").textContent = Number.isInteger(n) && n > 0 ? `write ${count(n)} keys` : "write keys";
}

function setUp() {
  $("fill-n").addEventListener("input", fillLabel);
  $("fill-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const n = Number($("fill-n").value);
    if (Number.isInteger(n) && n > 0) {
      fillInSteps(n);
    } else {
      post("/api/fill", { n: $("fill-n").value }); // the API's answer says what is wrong
    }
  });
  $("delete-form").addEventListener("submit", (event) => {
    event.preventDefault();
    // The API takes keys as percent-encoded bytes; URLSearchParams encodes the text typed.
    const params = {};
    if ($("delete-from").value) params.from = $("delete-from").value;
    if ($("delete-to").value) params.to = $("delete-to").value;
    post("/api/delete_range", params);
  });
  for (const name of ["flush", "compact", "sync"]) {
    $(name).addEventListener("click", () => post(`/api/${name}`, {}));
  }
  fillLabel();
  poll();
}

setUp();
