// KiCI dashboard: relative times, live run status, the run page's tabs, a job's step logs as
// sections (historical, then live), provisioning logs, cancel and re-run, approving and
// rejecting held jobs. Plain ES2020, no dependencies.
"use strict";

const OFFLINE = "Log content is served by the orchestrator, which is currently offline";

// A state-changing API call: sends the session's CSRF token from the page's
// <meta name="csrf-token">, which the Platform requires with the session cookie.
function post(url, body) {
  const meta = document.querySelector('meta[name="csrf-token"]');
  const headers = { "x-csrf-token": meta ? meta.content : "" };
  if (body !== undefined) headers["content-type"] = "application/json";
  return fetch(url, {
    method: "POST",
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

// "3 min ago"; a deadline (`data-until`, a hold's expiry) still to come is "in 59 min". Other
// times a skewed browser clock puts ahead are "0s ago".
function relativeTimes(root = document) {
  for (const el of root.querySelectorAll("time[data-ms]")) {
    const delta = Math.round((Date.now() - Number(el.dataset.ms)) / 1000);
    const ahead = delta < 0 && el.dataset.until !== undefined;
    const seconds = ahead ? -delta : Math.max(delta, 0);
    const span = seconds < 60 ? `${seconds}s`
      : seconds < 3600 ? `${Math.floor(seconds / 60)} min`
      : seconds < 86400 ? `${Math.floor(seconds / 3600)} h`
      : `${Math.floor(seconds / 86400)} d`;
    el.textContent = ahead ? `in ${span}` : `${span} ago`;
    el.title = new Date(Number(el.dataset.ms)).toISOString();
  }
}

// Clocks of what is still going (`data-since`, epoch ms): "1m 05s", ticked every second.
function tickElapsed(root = document) {
  for (const el of root.querySelectorAll(".elapsed[data-since]")) {
    const seconds = Math.max(0, Math.floor((Date.now() - Number(el.dataset.since)) / 1000));
    const minutes = Math.floor(seconds / 60);
    el.textContent = minutes === 0 ? `${seconds}s`
      : minutes < 60 ? `${minutes}m ${String(seconds % 60).padStart(2, "0")}s`
      : `${Math.floor(minutes / 60)}h ${String(minutes % 60).padStart(2, "0")}m`;
  }
}

function toast(message) {
  const el = document.createElement("div");
  el.className = "toast";
  el.setAttribute("role", "status");
  el.textContent = message;
  document.body.append(el);
  setTimeout(() => el.remove(), 5000);
}

// ANSI SGR colours to spans; everything else is text.
const PALETTE = ["#484f58", "#ff7b72", "#3fb950", "#d29922", "#58a6ff", "#bc8cff", "#39c5cf", "#b1bac4",
  "#6e7681", "#ffa198", "#56d364", "#e3b341", "#79c0ff", "#d2a8ff", "#56d4dd", "#f0f6fc"];
function color256(n) {
  if (n < 16) return PALETTE[n];
  if (n >= 232) { const v = 8 + (n - 232) * 10; return `rgb(${v},${v},${v})`; }
  n -= 16;
  const c = (x) => (x === 0 ? 0 : 55 + x * 40);
  return `rgb(${c(Math.floor(n / 36))},${c(Math.floor(n / 6) % 6)},${c(n % 6)})`;
}
function ansiLine(text) {
  const frag = document.createDocumentFragment();
  let style = {};
  const parts = text.split(/\x1b\[([0-9;]*)m/);
  parts.forEach((part, i) => {
    if (i % 2 === 1) {
      const codes = part === "" ? [0] : part.split(";").map(Number);
      for (let k = 0; k < codes.length; k++) {
        const c = codes[k];
        if (c === 0) style = {};
        else if (c === 1) style.bold = true;
        else if (c >= 30 && c <= 37) style.fg = PALETTE[c - 30];
        else if (c >= 90 && c <= 97) style.fg = PALETTE[c - 90 + 8];
        else if (c >= 40 && c <= 47) style.bg = PALETTE[c - 40];
        else if ((c === 38 || c === 48) && codes[k + 1] === 5) { style[c === 38 ? "fg" : "bg"] = color256(codes[k + 2]); k += 2; }
        else if ((c === 38 || c === 48) && codes[k + 1] === 2) { style[c === 38 ? "fg" : "bg"] = `rgb(${codes[k + 2]},${codes[k + 3]},${codes[k + 4]})`; k += 4; }
        else if (c === 39) delete style.fg;
        else if (c === 49) delete style.bg;
      }
    } else if (part) {
      const span = document.createElement("span");
      span.textContent = part;
      if (style.fg) span.style.color = style.fg;
      if (style.bg) span.style.background = style.bg;
      if (style.bold) span.className = "ansi-bold";
      frag.append(span);
    }
  });
  return frag;
}

// The status stream: run status changes and the orchestrator coming and going.
const listeners = [];
function statusStream() {
  const dot = document.getElementById("live-dot");
  const label = document.getElementById("live-label");
  const show = (state, text) => {
    if (!dot || !label) return;
    dot.parentElement.hidden = false;
    dot.className = `dot ${state}`;
    label.textContent = text;
  };
  show("", "Live updates: connecting");
  const source = new EventSource("/api/v1/events/live");
  source.onopen = () => show("on", "Live");
  source.onerror = () => show("off", "Reconnecting…");
  source.onmessage = (message) => {
    let event;
    try { event = JSON.parse(message.data); } catch { return; }
    for (const listener of listeners) listener(event);
  };
}

// Runs list: swap the rows when a run changes.
function runsList(table) {
  let pending = false;
  listeners.push(async (event) => {
    if (event.type !== "run.status" || pending) return;
    pending = true;
    setTimeout(async () => {
      pending = false;
      const response = await fetch(`/runs/rows${location.search}`);
      if (response.ok) {
        table.tBodies[0].innerHTML = await response.text();
        relativeTimes(table);
      }
    }, 200);
  });
}

// The tab's icon shows the run's status: the mark with a dot of the status's colour.
const FAVICON_COLOURS = {
  success: "#1a7f37", failed: "#cf222e", running: "#bf8700", cancelling: "#bf8700",
  held: "#8250df", waiting: "#0969da", cancelled: "#8c959f", pending: "#8c959f", queued: "#8c959f",
};
function statusFavicon(status) {
  const link = document.querySelector('link[rel="icon"]');
  const colour = FAVICON_COLOURS[status];
  if (!link || !colour) return;
  const svg = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="7" fill="#0969da"/>'
    + '<path d="M9 7h4v7.2L19.4 7h5l-7.1 7.6L25 25h-5l-5.2-7.4-1.8 1.9V25H9z" fill="#fff"/>'
    + `<circle cx="24" cy="24" r="7.5" fill="${colour}" stroke="#fff" stroke-width="2"/></svg>`;
  link.href = `data:image/svg+xml,${encodeURIComponent(svg)}`;
  link.dataset.status = status;
}

// The job graph's edges: from the right of each job a node needs to the node's left. Built as
// elements, never as markup: job names are the workflow's, any text at all.
const SVG_NS = "http://www.w3.org/2000/svg";
function drawEdges() {
  const graph = document.querySelector(".graph");
  if (!graph) return;
  const svg = graph.querySelector("svg.edges");
  const origin = graph.getBoundingClientRect();
  svg.replaceChildren();
  for (const node of graph.querySelectorAll(".node[data-needs]")) {
    let needs;
    try { needs = JSON.parse(node.dataset.needs); } catch { needs = []; }
    for (const need of needs) {
      const upstream = [...graph.querySelectorAll(".node")].find((n) => n.dataset.job === need);
      if (!upstream) continue;
      const a = upstream.getBoundingClientRect();
      const b = node.getBoundingClientRect();
      const x1 = a.right - origin.left + graph.scrollLeft, y1 = a.top + a.height / 2 - origin.top;
      const x2 = b.left - origin.left + graph.scrollLeft, y2 = b.top + b.height / 2 - origin.top;
      const mid = (x1 + x2) / 2;
      const path = document.createElementNS(SVG_NS, "path");
      path.dataset.from = need;
      path.dataset.to = node.dataset.job;
      path.setAttribute("d", `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`);
      svg.append(path);
    }
  }
}

// Run page.
function runPage(section) {
  statusFavicon(section.dataset.runStatus);
  const runId = section.dataset.runId;
  const api = `/api/v1/runs/${encodeURIComponent(runId)}`;
  const log = document.getElementById("log");
  const message = document.getElementById("log-message");
  const title = document.getElementById("log-title");
  const badge = document.getElementById("log-badge");

  for (const tab of section.querySelectorAll("[data-tab]")) {
    tab.addEventListener("click", () => {
      for (const other of section.querySelectorAll("[data-tab]")) {
        other.setAttribute("aria-selected", String(other === tab));
        document.getElementById(`tab-${other.dataset.tab}`).hidden = other !== tab;
      }
    });
  }

  // The log pane shows one job: each of its steps a section (`details.step-log`) whose header
  // sticks to the top while its lines scroll under it. A step's lines are fetched when its
  // section first opens (or a search needs them), then followed live while it runs. Choosing
  // another job drops the sections; `generation` tells late answers and queued chunks that
  // they are stale. `chosenStep`: the step index the address names.
  let job = null;
  let generation = 0;
  let chosenStep = null;

  const jump = document.getElementById("log-jump");
  const atBottom = () => log.scrollHeight - log.scrollTop - log.clientHeight < 24;
  log.addEventListener("scroll", () => { if (atBottom()) jump.hidden = true; });
  jump.addEventListener("click", () => { log.scrollTop = log.scrollHeight; jump.hidden = true; });

  // Ids stay unique across the job's sections; the address keeps the step apart (?step=N#L42).
  const rowId = (stepIndex, n) => `step${stepIndex}-L${n}`;

  // One line: its number links to it (#L<n>), its time shows with Timestamps (both left out of
  // the text a reader copies).
  function lineRow(step, line, n) {
    const row = document.createElement("span");
    row.className = "ln";
    row.id = rowId(step.index, n);
    const number = document.createElement("a");
    number.className = "n";
    number.href = `${step.anchor}#L${n}`;
    number.dataset.n = String(n);
    number.setAttribute("aria-label", `Line ${n}`);
    const time = document.createElement("span");
    time.className = "ts";
    time.dataset.ts = line.ts ? new Date(line.ts).toISOString().slice(11, 23) : "";
    row.append(number, time, ansiLine(line.line), "\n");
    return row;
  }

  // A line under a step's lines: "No output.", or how the step ended while it was followed.
  // The pane stays at the end if the reader was there.
  function note(step, text) {
    const stay = step.tail && step.details.open && atBottom();
    if (!step.note) {
      step.note = document.createElement("p");
      step.note.className = "notice";
      step.note.setAttribute("role", "status");
      step.details.append(step.note);
    }
    step.note.textContent = text;
    if (stay) log.scrollTop = log.scrollHeight;
  }

  // Appends in chunks, a frame each, so a 100,000-line log does not freeze the page. A step
  // whose end is followed (`tail`: it streams, or it opened with its job) keeps the pane at
  // the end while the reader is there, else offers "Jump to bottom". Batches queue behind each
  // other.
  function appendLines(step, lines) {
    if (!lines.length) return;
    if (step.note) { step.note.remove(); step.note = null; }
    step.pending = step.pending.concat(lines);
    if (step.rendering) return;
    step.rendering = true;
    const mine = generation;
    const chunk = () => {
      if (mine !== generation) return;
      const follow = step.tail && step.details.open;
      const stay = follow && atBottom();
      const fragment = document.createDocumentFragment();
      for (const line of step.pending.splice(0, 2000)) {
        step.lineCount += 1;
        fragment.append(lineRow(step, line, step.lineCount));
      }
      step.body.append(fragment);
      if (stay) log.scrollTop = log.scrollHeight;
      else if (follow) jump.hidden = false;
      if (step.pending.length) requestAnimationFrame(chunk);
      else {
        step.rendering = false;
        log.dispatchEvent(new CustomEvent("lines", { detail: step }));
      }
    };
    chunk();
  }

  // A step's section: a header (status, name, duration, exit code, its raw log and a download)
  // and, once opened, its lines. The two links sit beside the summary, drawn over its row:
  // a link inside a summary would be a control inside a control.
  function stepSection(link) {
    const index = link.dataset.stepIndex;
    const name = link.dataset.stepName;
    const path = `${api}/jobs/${encodeURIComponent(job.id)}/steps/${index}`;
    const details = document.createElement("details");
    details.className = "step-log";
    details.dataset.stepIndex = index;
    const summary = document.createElement("summary");
    const badge = document.createElement("span");
    const label = document.createElement("span");
    label.className = "step-name";
    label.textContent = name;
    const took = document.createElement("span");
    took.className = "dur";
    const exit = document.createElement("span");
    exit.className = "exit";
    const raw = document.createElement("a");
    raw.href = `${path}/logs?format=text`;
    raw.target = "_blank";
    raw.rel = "noopener";
    raw.textContent = "Raw";
    raw.setAttribute("aria-label", `Raw log of ${name}`);
    const download = document.createElement("a");
    download.href = `${path}/logs?format=text&download=1`;
    download.setAttribute("download", "");
    download.textContent = "Download";
    download.setAttribute("aria-label", `Download the log of ${name}`);
    const links = document.createElement("span");
    links.className = "step-links";
    links.append(raw, download);
    summary.append(badge, label, took, exit);
    const body = document.createElement("pre");
    body.className = "lines";
    details.append(summary, body);
    const block = document.createElement("div");
    block.className = "step-block";
    block.append(links, details);
    const step = {
      index, block, details, badge, took, exit, body,
      logs: `${path}/logs`,
      stream: `${path}/live`,
      anchor: `?job=${encodeURIComponent(job.id)}&step=${index}`,
      status: null, lineCount: 0, pending: [], rendering: false,
      loading: null, loaded: false, live: null, tail: false, note: null,
    };
    details.addEventListener("toggle", () => { if (details.open) load(step); });
    return step;
  }
  function updateHeader(step, link) {
    step.status = link.dataset.status;
    step.details.dataset.status = step.status;
    step.badge.className = `status status-${step.status}`;
    step.badge.textContent = step.status;
    step.took.textContent = link.querySelector(".dur")?.textContent ?? "";
    step.exit.textContent = link.querySelector(".exit")?.textContent ?? "";
  }

  // The step's stored lines, fetched once (again after a failure); a running step is then
  // followed live.
  function load(step) {
    step.loading ||= fetchLines(step);
    return step.loading;
  }
  async function fetchLines(step) {
    const mine = generation;
    const started = step.status;
    let response;
    try {
      response = await fetch(step.logs);
    } catch {
      response = null;
    }
    if (mine !== generation) return;
    if (!response || !response.ok) {
      // Left unloaded: opening the section again, or the orchestrator's return, retries.
      step.loading = null;
      message.textContent = !response ? "Cannot load the log."
        : response.status === 503 || response.status === 504 ? OFFLINE
        : `Cannot load the log (HTTP ${response.status}).`;
      return;
    }
    const data = await response.json();
    if (mine !== generation) return;
    step.loaded = true;
    appendLines(step, data.lines);
    if (step.status === "running") follow(step);
    // It ended while its lines loaded, unfollowed: the lines printed since come as for a
    // followed step.
    else if (started === "running") finish(step);
    else if (!data.lines.length) note(step, "No output.");
  }

  // `known`: how many lines the page has (rendered or still queued); the stream sends the rest.
  // A reconnecting EventSource asks again from the same `afterLineCount`, so a batch may start
  // before `known`: its `lineCount` (the count after it) tells which of its lines are new.
  function follow(step) {
    if (step.live) return;
    step.tail = true;
    badge.hidden = false;
    const known = () => step.lineCount + step.pending.length;
    step.live = new EventSource(`${step.stream}?afterLineCount=${known()}`);
    step.live.onmessage = (event) => {
      let data;
      try { data = JSON.parse(event.data); } catch { return; }
      if (!data.lines) return;
      const had = known() - (data.lineCount - data.lines.length);
      appendLines(step, had > 0 ? data.lines.slice(had) : data.lines);
    };
  }
  function stopLive(step) {
    if (!step.live) return;
    step.live.close();
    step.live = null;
    badge.hidden = ![...job.steps.values()].some((other) => other.live);
  }
  // A followed step ended: its stream stops, the lines it had not relayed yet come from the
  // stored log, and a notice under them says how the step ended.
  async function finish(step) {
    stopLive(step);
    const mine = generation;
    try {
      const response = await fetch(step.logs);
      const data = response.ok ? await response.json() : { lines: [] };
      if (mine !== generation) return;
      appendLines(step, data.lines.slice(step.lineCount + step.pending.length));
    } catch {
      // The stream already brought what it could; the notice still says how the step ended.
    }
    if (mine === generation) note(step, `Step finished: ${step.status}`);
  }

  // Line anchors: a number click marks the line and puts ?job=&step=#L<n> in the address,
  // which opens the same job, step and line again.
  function highlight(stepIndex, n, scroll) {
    for (const old of log.querySelectorAll(".ln.hl")) old.classList.remove("hl");
    const row = document.getElementById(rowId(stepIndex, n));
    if (!row) return false;
    row.classList.add("hl");
    if (scroll) row.scrollIntoView({ block: "center" });
    return true;
  }
  function setAddress(stepIndex, hash = "") {
    const step = stepIndex === null ? "" : `&step=${stepIndex}`;
    history.replaceState(null, "", `${location.pathname}?job=${encodeURIComponent(job.id)}${step}${hash}`);
  }
  log.addEventListener("click", (event) => {
    const number = event.target.closest("a.n");
    if (!number) return;
    event.preventDefault();
    chosenStep = number.closest("details.step-log").dataset.stepIndex;
    setAddress(chosenStep, `#L${number.dataset.n}`);
    markSelection();
    highlight(chosenStep, number.dataset.n, false);
  });

  // Search: the lines of every step of the job holding the text (the steps not loaded yet are
  // fetched), counted, with next and previous; the section of the match shown opens.
  const search = document.getElementById("log-search");
  const matchCount = document.getElementById("log-matches");
  let matches = [];
  let current = -1;
  function show(index) {
    if (!matches.length) return;
    current = (index + matches.length) % matches.length;
    for (const row of log.querySelectorAll(".ln.current")) row.classList.remove("current");
    const row = matches[current];
    row.classList.add("current");
    row.closest("details.step-log").open = true;
    row.scrollIntoView({ block: "center" });
    matchCount.textContent = `${current + 1} of ${matches.length}`;
  }
  // `keep`: new lines came in; the match shown stays (and the reader where they are).
  function runSearch(keep) {
    const shown = keep ? matches[current] : undefined;
    for (const row of log.querySelectorAll(".ln.match")) row.classList.remove("match", "current");
    const needle = search.value.toLowerCase();
    matches = needle ? [...log.querySelectorAll(".ln")].filter((row) => row.textContent.toLowerCase().includes(needle)) : [];
    current = -1;
    for (const row of matches) row.classList.add("match");
    matchCount.textContent = needle ? (matches.length ? "" : "No matches") : "";
    if (!matches.length) return;
    if (shown && matches.includes(shown)) {
      current = matches.indexOf(shown);
      shown.classList.add("current");
      matchCount.textContent = `${current + 1} of ${matches.length}`;
    } else show(0);
  }
  function searchJob() {
    if (search.value && job) for (const step of job.steps.values()) load(step);
    runSearch(false);
  }
  search.addEventListener("input", searchJob);
  search.addEventListener("keydown", (event) => {
    if (event.key === "Enter") { event.preventDefault(); show(current + (event.shiftKey ? -1 : 1)); }
  });
  document.getElementById("log-next").addEventListener("click", () => show(current + 1));
  document.getElementById("log-prev").addEventListener("click", () => show(current - 1));
  log.addEventListener("lines", () => { if (search.value) runSearch(true); });

  const times = document.getElementById("log-times");
  times.addEventListener("click", () => {
    const on = log.classList.toggle("with-ts");
    times.setAttribute("aria-pressed", String(on));
  });

  async function loadProvisioning(jobId) {
    const box = document.getElementById("provisioning");
    const pre = document.getElementById("provisioning-log");
    const response = await fetch(`${api}/jobs/${encodeURIComponent(jobId)}/provisioning`);
    if (!job || job.id !== jobId) return;
    if (!response.ok) { box.hidden = true; return; }
    const data = await response.json();
    pre.textContent = "";
    if (!data.lines.length) { box.hidden = true; return; }
    let failed = false;
    for (const line of data.lines) {
      const row = document.createElement("span");
      row.className = line.eventType === "scaler.failed" ? "ln failed" : "ln";
      row.dataset.n = new Date(line.ts).toISOString().slice(11, 19);
      row.textContent = `${line.eventType}  ${line.message}\n`;
      failed ||= line.eventType === "scaler.failed";
      pre.append(row);
    }
    box.hidden = false;
    box.open = failed || !section.querySelector(`a.step[data-job-id="${CSS.escape(jobId)}"]`);
  }

  // The shown job's steps as the tree lists them now: a section for each new one, and for each
  // its header's status, duration and exit code. A followed step that ended gets its notice,
  // and the step that starts after it opens in its place. Steps are listed only once they
  // start, maybe a refresh or more after the previous one ended: once an open step that ran has
  // ended, `job.following` stays set while the job is shown, so whichever refresh first lists
  // a running step opens it.
  function syncSteps() {
    for (const link of section.querySelectorAll(`a.step[data-job-id="${CSS.escape(job.id)}"]`)) {
      let step = job.steps.get(link.dataset.stepIndex);
      if (!step) {
        step = stepSection(link);
        job.steps.set(step.index, step);
        log.append(step.block);
      }
      const before = step.status;
      updateHeader(step, link);
      if (before === step.status) continue;
      if (before === "running" && step.details.open) job.following = true;
      if (step.live && step.status !== "running") finish(step);
      else if (step.status === "running" && !step.live) {
        if (job.following) {
          step.tail = true;
          step.details.open = true;
          load(step);
        }
        if (step.loaded) follow(step);
      }
    }
    const none = "No steps have run.";
    if (job.steps.size && message.textContent === none) message.textContent = "";
    else if (!job.steps.size && !message.textContent) message.textContent = none;
  }

  // The tree and the graph mark the job shown, the tree the step the address names.
  function markSelection() {
    for (const old of section.querySelectorAll(".tree .selected")) old.classList.remove("selected");
    if (!job) return;
    const id = CSS.escape(job.id);
    section.querySelector(`details.job[data-job-id="${id}"]`)?.classList.add("selected");
    if (chosenStep !== null) section.querySelector(`a.step[data-job-id="${id}"][data-step-index="${CSS.escape(chosenStep)}"]`)?.classList.add("selected");
    markNode(job.id);
  }

  // Puts `jobId`'s steps in the pane, unless it is the job shown already; false when the page
  // has no such job.
  function showJob(jobId) {
    const entry = section.querySelector(`details.job[data-job-id="${CSS.escape(jobId)}"]`);
    if (!entry) return false;
    if (job && job.id === jobId) return true;
    if (job) for (const step of job.steps.values()) stopLive(step);
    generation += 1;
    job = { id: jobId, steps: new Map(), following: false };
    log.replaceChildren();
    jump.hidden = true;
    badge.hidden = true;
    message.textContent = "";
    title.textContent = entry.querySelector(".job-name").textContent;
    loadProvisioning(jobId);
    syncSteps();
    searchJob();
    return true;
  }

  // A job chosen as a whole (a graph node, its name in the tree, the page's first view): its
  // failed step opens, else its running one, else its only one, following the end.
  function selectJob(jobId) {
    if (job && job.id === jobId) return;
    if (!showJob(jobId)) return;
    const steps = [...job.steps.values()];
    const step = steps.find((s) => s.status === "failed")
      || steps.find((s) => s.status === "running")
      || (steps.length === 1 ? steps[0] : null);
    chosenStep = step ? step.index : null;
    markSelection();
    setAddress(chosenStep);
    if (!step) return;
    step.tail = true;
    step.details.open = true;
    load(step);
  }

  // A step chosen (in the tree, or by the address): its section opens at the top of the pane,
  // or, with `line`, scrolled to that line, marked once it is drawn.
  function chooseStep(jobId, stepIndex, line) {
    if (!showJob(jobId)) return;
    chosenStep = stepIndex;
    markSelection();
    setAddress(stepIndex, line ? `#L${line}` : "");
    const step = job.steps.get(stepIndex);
    if (!step) return;
    step.details.open = true;
    load(step);
    if (!line) {
      log.scrollTop += step.details.getBoundingClientRect().top - log.getBoundingClientRect().top;
    } else if (!highlight(stepIndex, line, true)) {
      // Marks the line once its step's lines are drawn; another job shown first drops it.
      const mine = generation;
      const mark = (event) => {
        if (mine === generation && event.detail !== step) return;
        log.removeEventListener("lines", mark);
        if (mine === generation) highlight(stepIndex, line, true);
      };
      log.addEventListener("lines", mark);
    }
  }

  function markNode(jobId) {
    for (const node of section.querySelectorAll(".graph .node")) {
      node.classList.toggle("selected", node.querySelector(`[data-select-job="${CSS.escape(jobId)}"]`) !== null);
    }
  }
  section.addEventListener("click", (event) => {
    const node = event.target.closest("[data-select-job]");
    if (!node) return;
    selectJob(node.dataset.selectJob);
    const entry = section.querySelector(`details.job[data-job-id="${CSS.escape(node.dataset.selectJob)}"]`);
    if (entry) {
      entry.open = true;
      entry.scrollIntoView({ block: "nearest" });
    }
  });
  drawEdges();
  window.addEventListener("resize", drawEdges);
  section.addEventListener("toggle", drawEdges, true);
  section.addEventListener("click", (event) => {
    const link = event.target.closest("a.step");
    if (link) {
      event.preventDefault();
      chooseStep(link.dataset.jobId, link.dataset.stepIndex, null);
      return;
    }
    // A job's name in the tree shows it (its summary still opens or closes it).
    const summary = event.target.closest(".tree details.job > summary");
    if (summary && !event.target.closest("a")) selectJob(summary.parentElement.dataset.jobId);
  });

  for (const button of section.querySelectorAll("[data-cancel]")) {
    button.addEventListener("click", async () => {
      const response = await post(`${api}/cancel`, { force: button.dataset.cancel === "force" });
      const body = await response.json().catch(() => ({}));
      if (response.ok) toast(`Run ${body.status}`);
      else toast(body.error ? body.error.message : `Cancel failed (HTTP ${response.status})`);
    });
  }

  // Re-run everything, or (`data-rerun="failed"`) only the failed jobs and those needing them.
  for (const rerun of section.querySelectorAll("[data-rerun]")) {
    const failedOnly = rerun.dataset.rerun === "failed";
    rerun.addEventListener("click", async () => {
      const question = failedOnly
        ? "Run the failed jobs again on the same commit? Jobs that succeeded keep their results."
        : "Run this workflow again on the same commit?";
      if (!window.confirm(question)) return;
      const response = await post(`${api}/rerun`, { failedOnly });
      const body = await response.json().catch(() => ({}));
      if (response.ok && body.newRunId) location.assign(`/runs/${encodeURIComponent(body.newRunId)}`);
      else toast(body.error ? body.error.message : `Re-run failed (HTTP ${response.status})`);
    });
  }

  // Keep the tree, header and metadata current without touching the open logs: what was open
  // in the tree and the graph stays open, the sections keep their state and take the steps'
  // new statuses.
  async function refresh() {
    const response = await fetch(location.pathname);
    if (!response.ok) return;
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    const opened = new Map([...section.querySelectorAll(".tree details.job, .graph .node[data-job] > details")]
      .map((details) => [details.dataset.jobId ?? `node:${details.parentElement.dataset.job}`, details.open]));
    for (const selector of [".tree", "#run-status", "#run-elapsed", "#hold-banners", "#job-graph", ".metadata", "#tab-timeline", "#tab-summary", "header.top nav"]) {
      const fresh = page.querySelector(selector);
      const current = document.querySelector(selector);
      if (fresh && current) {
        current.innerHTML = fresh.innerHTML;
        current.className = fresh.className;
      }
    }
    for (const details of section.querySelectorAll(".tree details.job, .graph .node[data-job] > details")) {
      const open = opened.get(details.dataset.jobId ?? `node:${details.parentElement.dataset.job}`);
      if (open !== undefined) details.open = open;
    }
    const status = page.querySelector("section.run");
    if (status) {
      section.dataset.runStatus = status.dataset.runStatus;
      statusFavicon(status.dataset.runStatus);
    }
    const banner = page.getElementById("failure-banner");
    if (banner && !document.getElementById("failure-banner")) section.querySelector(".run-header").after(banner);
    if (job) syncSteps();
    markSelection();
    relativeTimes();
    tickElapsed();
    drawEdges();
  }
  // Counted so the poll below waits for them. Failures (offline) are dropped: the next status
  // event or poll refreshes again.
  let refreshing = 0;
  function update() {
    refreshing += 1;
    return refresh().catch(() => {}).finally(() => { refreshing -= 1; });
  }
  listeners.push((event) => {
    if (event.type === "run.status" && event.runId === runId) update();
    if (event.type === "orchestrator.online" && message.textContent === OFFLINE && job) {
      message.textContent = "";
      loadProvisioning(job.id);
      for (const step of job.steps.values()) if (step.details.open || search.value) load(step);
    }
  });

  // Status events come only when the run's status changes: while it runs, steps starting and
  // ending are seen by asking for the run every few seconds, and the page is refreshed when a
  // job's or a step's status is not the one the tree shows. A tick is skipped while the last
  // poll or a refresh still runs (a slow or offline Platform), and a failed one waits for the
  // next.
  let polling = false;
  setInterval(async () => {
    if (polling || refreshing || document.hidden || !["running", "cancelling"].includes(section.dataset.runStatus)) return;
    polling = true;
    try {
      const response = await fetch(`${api}/detail`);
      if (!response.ok) return;
      const detail = await response.json();
      const shown = (selector) => section.querySelector(selector)?.dataset.status;
      const changed = detail.jobs.some((j) => {
        const id = CSS.escape(j.jobId);
        return shown(`details.job[data-job-id="${id}"]`) !== j.status
          || (j.steps || []).some((s) => shown(`a.step[data-job-id="${id}"][data-step-index="${s.stepIndex}"]`) !== s.status);
      });
      if (changed) await update();
    } catch {
      // Offline, or not the answer expected: the next tick asks again.
    } finally {
      polling = false;
    }
  }, 5000);

  // Show the job and step the address names (?job=&step=#L<n>), else the job of the first
  // failed step, else of the running one, else the first job.
  const wanted = new URLSearchParams(location.search);
  const named = wanted.get("job");
  const first = section.querySelector('a.step[data-status="failed"]')
    || section.querySelector('a.step[data-status="running"]')
    || section.querySelector("a.step")
    || section.querySelector("details.job");
  const jobId = named && section.querySelector(`details.job[data-job-id="${CSS.escape(named)}"]`) ? named
    : first && first.dataset.jobId;
  if (jobId) {
    if (jobId === named && wanted.has("step")) {
      chooseStep(jobId, wanted.get("step"), location.hash.startsWith("#L") ? location.hash.slice(2) : null);
    } else selectJob(jobId);
    section.querySelector(`details.job[data-job-id="${CSS.escape(jobId)}"]`).open = true;
  }
}

// Approval queue: Approve, or Reject with the reason typed beside it, then show the queue
// as it is now.
function approvalQueue(section) {
  async function decide(row, verdict, reason) {
    const body = { job: row.dataset.jobId };
    if (reason) body.reason = reason;
    const response = await post(`/api/v1/runs/${encodeURIComponent(row.dataset.runId)}/${verdict}`, body);
    const answer = await response.json().catch(() => ({}));
    if (response.ok) location.reload();
    else toast(answer.error ? answer.error.message : `${verdict === "approve" ? "Approval" : "Rejection"} failed (HTTP ${response.status})`);
  }
  section.addEventListener("click", (event) => {
    const button = event.target.closest("[data-approve]");
    if (button) decide(button.closest("tr"), "approve");
  });
  section.addEventListener("submit", (event) => {
    const form = event.target.closest("form[data-reject]");
    if (!form) return;
    event.preventDefault();
    decide(form.closest("tr"), "reject", form.elements.reason.value.trim());
  });
}

// Workflows page: "Run now" of a dispatch() trigger with the form's inputs, or of a schedule;
// on success, the new run's page.
function workflowsPage(section) {
  async function start(url, body) {
    const response = await post(url, body);
    const answer = await response.json().catch(() => ({}));
    if (response.ok) location.href = `/runs/${encodeURIComponent(answer.runId)}`;
    else toast(answer.error ? answer.error.message : `The run did not start (HTTP ${response.status})`);
  }
  section.addEventListener("submit", (event) => {
    const form = event.target.closest("form[data-dispatch]");
    if (!form) return;
    event.preventDefault();
    const inputs = {};
    for (const field of form.elements) {
      if (field.name && field.value !== "") inputs[field.name] = field.value;
    }
    const type = form.querySelector("[data-type]");
    start("/api/v1/workflows/dispatch", {
      orchestratorId: form.dataset.orchestrator,
      source: form.dataset.source,
      repo: form.dataset.repo,
      workflow: form.dataset.workflow,
      ...(type ? { type: type.value } : {}),
      inputs,
    });
  });
  section.addEventListener("click", (event) => {
    const button = event.target.closest("[data-run-schedule]");
    if (button) start(`/api/v1/schedules/${encodeURIComponent(button.dataset.runSchedule)}/run`, { orchestratorId: button.dataset.orchestrator });
  });
}

// The header's theme button: light → dark → the system's (theme.js keeps the choice).
const THEME_LABELS = {
  light: "Theme: light (switch to dark)",
  dark: "Theme: dark (switch to the system's)",
  system: "Theme: follows the system (switch to light)",
};
function themeToggle(button) {
  const label = (choice) => button.setAttribute("aria-label", THEME_LABELS[choice]);
  label(localStorage.getItem("kici-theme") || "system");
  button.addEventListener("click", () => label(window.kiciTheme.cycle()));
}

// Users page: Remove asks first, then deletes the user (their sessions end at once).
function usersPage(section) {
  section.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-remove-user]");
    if (!button) return;
    const name = button.dataset.removeUser;
    if (!window.confirm(`Remove ${name}? Their token stops working and they are signed out.`)) return;
    const meta = document.querySelector('meta[name="csrf-token"]');
    const response = await fetch(`/api/v1/users/${encodeURIComponent(name)}`, {
      method: "DELETE",
      headers: { "x-csrf-token": meta ? meta.content : "" },
    });
    if (response.ok) {
      button.closest("tr").remove();
      toast(`Removed ${name}`);
    } else {
      const answer = await response.json().catch(() => ({}));
      toast(answer.error ? answer.error.message : `Removing failed (HTTP ${response.status})`);
    }
  });
}

// Copy buttons (`data-copy`): the clipboard, or a selected text field where it is refused.
async function copy(text) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const field = document.createElement("textarea");
    field.value = text;
    document.body.append(field);
    field.select();
    document.execCommand("copy");
    field.remove();
  }
  toast("Copied");
}

document.addEventListener("DOMContentLoaded", () => {
  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-copy]");
    if (button) copy(button.dataset.copy);
  });
  const theme = document.getElementById("theme-toggle");
  if (theme && window.kiciTheme) themeToggle(theme);
  relativeTimes();
  setInterval(relativeTimes, 30000);
  tickElapsed();
  setInterval(tickElapsed, 1000);
  const table = document.querySelector("[data-live-runs]");
  const run = document.querySelector("section.run");
  if (table || run) statusStream();
  if (table) runsList(table);
  if (run) runPage(run);
  const queue = document.querySelector("section.approvals");
  if (queue) approvalQueue(queue);
  const workflows = document.querySelector("section.workflows");
  if (workflows) workflowsPage(workflows);
  const users = document.querySelector("section.users");
  if (users) usersPage(users);
});
