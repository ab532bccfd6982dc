/**
 * The dashboard page served at `/` by `Serve`: one HTML document with its style and script inline
 * (no build step), reading the JSON endpoints under `/api/pipelines`. A batch pipeline shows its
 * partitions calendar, a stream pipeline its processed events and dead letters (by type and status,
 * by day); either drills down into a day's dead letters, and only a batch one offers the re-run and
 * replay buttons.
 */

/** The page. */
export const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sluice</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1f2328; background: #fff; }
  h1 { font-size: 1.3rem; margin: 0 0 1rem; }
  h2 { font-size: 1.1rem; margin: 1.2rem 0 .5rem; }
  select, button { font: inherit; padding: .25rem .6rem; }
  #summary { margin: .6rem 0; }
  #grid { display: grid; grid-template-rows: repeat(7, 14px); grid-auto-flow: column; grid-auto-columns: 14px;
    gap: 3px; overflow-x: auto; padding-bottom: .4rem; }
  .cell { width: 14px; height: 14px; border: 0; padding: 0; border-radius: 2px; cursor: pointer; }
  .cell.pad { visibility: hidden; }
  .cell[data-state="missing"] { background: #d0d7de; }
  .cell[data-state="failed"] { background: #cf222e; }
  .cell[data-state="running"] { background: #0969da; }
  .cell[data-state="done"] { background: #2da44e; }
  .cell[data-state="done"].warn { background: #d4a72c; }
  .cell[data-state="done"].alert { background: #fb8500; }
  .cell.selected { outline: 2px solid #1f2328; outline-offset: 1px; }
  .legend span { display: inline-block; width: 12px; height: 12px; border-radius: 2px; margin: 0 .2rem 0 .8rem;
    vertical-align: middle; }
  #chart { display: block; margin: .6rem 0; max-width: 100%; }
  table { border-collapse: collapse; margin: .4rem 0; }
  th, td { border-bottom: 1px solid #d0d7de; padding: .25rem .5rem; text-align: left; vertical-align: top; }
  pre { margin: 0; white-space: pre-wrap; word-break: break-all; max-width: 48rem; }
  #message { margin: .5rem 0; font-weight: 600; }
  .muted { color: #656d76; }
</style>
</head>
<body>
<h1>Sluice</h1>
<label>Pipeline <select id="pipeline"></select></label>
<div id="summary" class="muted">loading…</div>
<div id="batch">
<div class="legend muted">
  <span style="background:#2da44e"></span>done <span style="background:#d4a72c"></span>done, some dead letters
  <span style="background:#fb8500"></span>alert <span style="background:#cf222e"></span>failed
  <span style="background:#0969da"></span>running <span style="background:#d0d7de"></span>missing
</div>
<div id="grid" role="grid" aria-label="partitions"></div>
<h2>Records and dead letters per day</h2>
<svg id="chart" height="120"></svg>
</div>
<section id="stream" hidden>
  <p id="stream-commands" class="muted"></p>
  <h2>Dead letters by error type</h2>
  <table id="stream-types"><thead><tr><th>error type</th><th>status</th><th>count</th></tr></thead><tbody></tbody>
  </table>
  <h2>Days with dead letters</h2>
  <table id="stream-days"><thead><tr><th>date</th><th>new</th><th>replayed</th><th>discarded</th></tr></thead>
    <tbody></tbody></table>
</section>
<section id="detail" hidden>
  <h2 id="detail-title"></h2>
  <div id="actions">
    <button id="rerun" type="button">Re-run partition</button>
    <button id="replay" type="button">Replay dead letters</button>
  </div>
  <div id="message" role="status"></div>
  <div id="runs-section">
    <h2>Runs</h2>
    <table id="runs"><thead><tr><th>started</th><th>status</th><th>read</th><th>loaded</th><th>dead</th><th>rate</th>
      <th>retries</th><th>error</th></tr></thead><tbody></tbody></table>
  </div>
  <h2>Dead letters</h2>
  <p id="dead-letters-note"></p>
  <table id="dead-letters"><thead><tr><th>id</th><th>line</th><th>status</th><th>attempts</th><th>error</th>
    <th>original record</th></tr></thead><tbody></tbody></table>
</section>
<script>
"use strict"
const $ = (id) => document.getElementById(id)
const pct = (r) => (r * 100).toFixed(2) + "%"
const time = (ms) => ms === null || ms === undefined ? "" : new Date(ms).toISOString().replace("T", " ").slice(0, 19)
const text = (tag, value, attrs) => {
  const el = document.createElement(tag)
  el.textContent = value === null || value === undefined ? "" : String(value)
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v)
  return el
}
const api = async (path, init) => {
  const response = await fetch(path, init)
  const raw = await response.text()
  let body
  try {
    body = JSON.parse(raw)
  } catch {
    // not the server's JSON (a proxy's error page…): say what came back instead of a parse error
    throw new Error(response.status + " " + response.statusText + (response.ok ? ": not JSON" : ""))
  }
  if (!response.ok) throw new Error((body && body.error) || response.status + " " + response.statusText)
  return body
}
/** An action started by a click failed: say so (a click's promise has no one else to tell). */
const report = (e) => { $("summary").textContent = "error: " + e.message }
let current = { pipeline: "", date: "" }
let pipelines = []
const isStream = () => pipelines.some((p) => p.name === current.pipeline && p.kind === "stream")
const load = () => isStream() ? loadStream() : loadCalendar()

const loadStream = async () => {
  const s = await api("/api/pipelines/" + encodeURIComponent(current.pipeline) + "/stream")
  const count = (status) => s.deadLetters.byType.filter((t) => t.status === status).reduce((n, t) => n + t.count, 0)
  const p = s.processed
  $("summary").textContent = s.pipeline + " (stream pipeline): " + p.events + " event(s) processed" +
    (p.lastProcessedAt === null ? "" : ", the latest at " + time(p.lastProcessedAt) + " (kept since " +
      time(p.firstProcessedAt) + ")") + "; " + count("new") + " new dead letter(s), " + count("replayed") +
    " replayed, " + count("discarded") + " discarded"
  $("stream-commands").textContent = s.description + ". Consumed by " + s.consume + "; reprocessed (its dead " +
    "letters included) by " + s.replay + ": it has no partitions to re-run."
  $("stream-types").tBodies[0].replaceChildren(...s.deadLetters.byType.map((t) => {
    const tr = document.createElement("tr")
    tr.append(text("td", t.errorType), text("td", t.status), text("td", t.count))
    return tr
  }))
  $("stream-days").tBodies[0].replaceChildren(...s.deadLetters.days.map((d) => {
    const tr = document.createElement("tr")
    const cell = document.createElement("td")
    const link = text("button", d.partition, { type: "button", "data-date": d.partition })
    link.addEventListener("click", () => select(d.partition).catch(report))
    cell.append(link)
    tr.append(cell, text("td", d.new), text("td", d.replayed), text("td", d.discarded))
    return tr
  }))
}

const loadCalendar = async () => {
  const q = new URLSearchParams(location.search)
  const range = ["since", "until"].filter((k) => q.get(k)).map((k) => k + "=" + encodeURIComponent(q.get(k)))
  const cal = await api("/api/pipelines/" + encodeURIComponent(current.pipeline) + "/calendar?" + range.join("&"))
  const s = cal.summary
  $("summary").textContent = cal.pipeline + " " + cal.start + ".." + cal.end + ": " + s.done + " done, " + s.failed +
    " failed, " + s.running + " running, " + s.missing + " missing; read " + s.read + ", loaded " + s.loaded +
    ", dead-lettered " + s.deadLettered + " (" + pct(s.failureRate) + ")"
  const grid = $("grid")
  grid.replaceChildren()
  const first = new Date(cal.start + "T00:00:00Z").getUTCDay()
  for (let i = 0; i < first; i++) grid.append(text("span", "", { class: "cell pad" }))
  for (const d of cal.days) {
    const cell = text("button", "", { class: "cell", type: "button", "data-date": d.partition, "data-state": d.state })
    if (d.state === "done" && d.alerted) cell.classList.add("alert")
    else if (d.state === "done" && d.deadLettered > 0) cell.classList.add("warn")
    if (d.partition === current.date) cell.classList.add("selected")
    cell.title = d.partition + ": " + d.state + (d.state === "missing" ? "" : ", read " + d.read + ", loaded " +
      d.loaded + ", dead " + d.deadLettered + " (" + pct(d.failureRate) + "), " + d.runs + " run(s)") +
      (d.error ? "\\n" + d.error : "") +
      (d.serving ? "\\nserving its " + new Date(d.serving.startedAt).toISOString().slice(0, 19).replace("T", " ") +
        " run: read " + d.serving.read + ", loaded " + d.serving.loaded + ", dead " + d.serving.deadLettered : "")
    cell.addEventListener("click", () => select(d.partition).catch(report))
    grid.append(cell)
  }
  drawChart(cal.days)
}

const drawChart = (days) => {
  const svg = $("chart")
  const ns = "http://www.w3.org/2000/svg"
  svg.replaceChildren()
  const w = Math.max(2, Math.min(16, Math.floor(900 / Math.max(1, days.length))))
  const max = Math.max(1, ...days.map((d) => d.read))
  svg.setAttribute("width", String(days.length * w))
  days.forEach((d, i) => {
    const bar = (value, y0, color, kind) => {
      const h = (value / max) * 110
      const r = document.createElementNS(ns, "rect")
      r.setAttribute("x", String(i * w))
      r.setAttribute("y", String(y0 - h))
      r.setAttribute("width", String(Math.max(1, w - 1)))
      r.setAttribute("height", String(h))
      r.setAttribute("fill", color)
      r.setAttribute("data-date", d.partition)
      r.setAttribute("data-kind", kind)
      const t = document.createElementNS(ns, "title")
      t.textContent = d.partition + ": " + d[kind === "loaded" ? "loaded" : "deadLettered"] + " " + kind
      r.append(t)
      svg.append(r)
      return y0 - h
    }
    const top = bar(d.loaded, 120, "#2da44e", "loaded")
    bar(d.deadLettered, top, "#cf222e", "dead letters")
  })
}

const select = async (date) => {
  current.date = date
  for (const c of document.querySelectorAll(".cell.selected")) c.classList.remove("selected")
  const cell = document.querySelector('.cell[data-date="' + date + '"]')
  if (cell) cell.classList.add("selected")
  const detail = await api("/api/pipelines/" + encodeURIComponent(current.pipeline) + "/partitions/" + date)
  $("detail").hidden = false
  $("detail-title").textContent = current.pipeline + " " + date
  // a stream pipeline has no runs of partitions, nor batch actions
  $("actions").hidden = isStream()
  $("runs-section").hidden = isStream()
  // a stream's dead letter is placed by its sequence in the stream, a file's by its line
  $("dead-letters").tHead.rows[0].cells[1].textContent = isStream() ? "sequence" : "line"
  const runs = $("runs").tBodies[0]
  runs.replaceChildren(...detail.runs.map((r) => {
    const tr = document.createElement("tr")
    tr.append(text("td", time(r.startedAt)), text("td", r.status), text("td", r.read), text("td", r.loaded),
      text("td", r.deadLettered), text("td", pct(r.failureRate)), text("td", r.retries),
      text("td", r.errorType ? r.errorType + ": " + (r.error || "") : ""))
    return tr
  }))
  $("dead-letters-note").textContent = detail.deadLettersTotal > detail.deadLetters.length
    ? "the first " + detail.deadLetters.length + " of " + detail.deadLettersTotal +
      " dead letters; all of them: sluice dlq list " + current.pipeline + " --date " + date + " --status all"
    : ""
  const dead = $("dead-letters").tBodies[0]
  dead.replaceChildren(...detail.deadLetters.map((d) => {
    const tr = document.createElement("tr")
    tr.setAttribute("data-id", d.id)
    const err = document.createElement("td")
    err.append(text("strong", d.errorType), text("pre", d.error))
    if (d.errorLength > d.error.length) {
      err.append(text("em", "… the first " + d.error.length + " of " + d.errorLength + " characters"))
    }
    const payload = document.createElement("td")
    payload.append(text("pre", d.originalRecord))
    if (d.truncated) {
      payload.append(text("em", "… the first " + d.originalRecord.length + " of " + d.originalRecordLength +
        " characters; the whole record: sluice dlq show " + current.pipeline + " " + d.id))
    }
    tr.append(text("td", d.id), text("td", d.position), text("td", d.status), text("td", d.attempts), err, payload)
    return tr
  }))
}

const act = async (kind) => {
  const date = current.date
  $("message").textContent = (kind === "run" ? "re-running " : "replaying ") + date + "…"
  try {
    const r = await api("/api/pipelines/" + encodeURIComponent(current.pipeline) + "/partitions/" + date + "/" + kind,
      { method: "POST" })
    $("message").textContent = kind === "run"
      ? "re-ran " + date + ": read " + r.read + ", loaded " + r.loaded + ", dead-lettered " + r.deadLettered
      : "replayed " + date + ": " + r.replayed + " replayed, " + r.stillFailing + " still failing of " + r.selected
  } catch (e) {
    $("message").textContent = "failed: " + e.message
  }
  await load()
  await select(date)
}
$("rerun").addEventListener("click", () => act("run").catch(report))
$("replay").addEventListener("click", () => act("replay").catch(report))

const show = () => {
  $("batch").hidden = isStream()
  $("stream").hidden = !isStream()
  $("detail").hidden = true
  $("message").textContent = ""
}

const start = async () => {
  pipelines = await api("/api/pipelines")
  const sel = $("pipeline")
  for (const p of pipelines) {
    sel.append(text("option", p.kind === "stream" ? p.name + " (stream)" : p.name, { value: p.name }))
  }
  const wanted = new URLSearchParams(location.search).get("pipeline")
  current.pipeline = wanted && pipelines.some((p) => p.name === wanted) ? wanted : (pipelines[0] || {}).name || ""
  sel.value = current.pipeline
  sel.addEventListener("change", () => {
    current = { pipeline: sel.value, date: "" }
    show()
    load().catch(report)
  })
  show()
  if (current.pipeline) await load()
  document.body.setAttribute("data-ready", "true")
}
start().catch(report)
</script>
</body>
</html>
`
