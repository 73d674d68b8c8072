/* Dumont dashboard (docs/dashboard.md). Plain JavaScript, no build step.
 *
 * W1: the API token is only ever in the sign-in field until POST /api/session
 *     answers; then the field is cleared. Requests ride on the HttpOnly
 *     session cookie; nothing is written to localStorage/sessionStorage.
 * W2: data from the server reaches the page only as text nodes (textContent),
 *     never as HTML, so a failover's detail cannot inject markup.
 * W3: the history is paged by the API (limit/offset); the page never holds
 *     more than one page of rows, whatever the number of failovers.
 * W4: live updates come from /api/events; a `failover` event updates the live
 *     panel at once and schedules one debounced refresh of the summary and
 *     history; a `resync` (we fell behind) or a reconnect refreshes all.
 * W5: simulated and real figures are never added up: the summary shows one
 *     group at a time, real failovers, tests (test-real) or simulated ones
 *     (report ?test=false and ?kind=real&test=true, docs/api.md API-Q1); a
 *     simulated failover's minutes and a real one's milliseconds make no mean.
 * W6: the live panel asks for every running failover (list ?active=true), so
 *     it agrees with the summary's "running now" however many finished since.
 * W7: instances: long ids shortened (whole on hover and copy); a destroyed
 *     machine shows no live state. */
'use strict';

const PHASES = ['detection', 'standby_activation', 'gpu_search', 'provisioning', 'ssh_ready',
  'restore', 'inference'];
const PHASE_LABEL = {
  detection: 'Detection', standby_activation: 'Standby activation', gpu_search: 'GPU search',
  provisioning: 'Provisioning', ssh_ready: 'SSH ready', restore: 'Restore', inference: 'Inference',
};
const TERMINAL = new Set(['completed', 'failed']);
const REFRESH_DEBOUNCE_MS = 300;
const LIVE_KEEP = 4; /* finished failovers kept in the live panel */

const state = {
  kind: null,             /* summary group: real | test | simulated (W5); null: not chosen */
  report: null,           /* ?test=false: simulated and real failovers, tests left out */
  testReport: null,       /* ?kind=real&test=true: the tests */
  page: 0,
  pageSize: 25,
  filters: { kind: '', gpu: '', since: '', until: '' },
  total: 0,
  expanded: new Set(),    /* failover ids whose details are open */
  statusCache: new Map(), /* id -> status object (terminal ones never change) */
  live: new Map(),        /* id -> status object, insertion order = arrival */
  es: null,
  refreshTimer: 0,
  instanceTimer: 0,
  signedIn: false,
  features: {},
  generation: 0,          /* bumped on sign-out: late answers are dropped */
};

/* ---------- small helpers ---------- */

const $ = (id) => document.getElementById(id);

/* h('div', {class: 'x', dataset: {a: 1}}, child...) — children are nodes or text (W2). */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

/* Durations: 612 ms, 12.3 s, 2 min 22.3 s. null -> "—". */
function fmtDuration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  const min = Math.floor(ms / 60000);
  return `${min} min ${((ms - min * 60000) / 1000).toFixed(1)} s`;
}

function fmtPercent(rate) {
  if (rate === null || rate === undefined) return '—';
  return `${(rate * 100).toFixed(1)}%`;
}

const pad = (n) => String(n).padStart(2, '0');

/* Local time, YYYY-MM-DD HH:MM:SS; the ISO value goes into a title. */
function fmtTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function timeEl(iso) {
  return h('time', { datetime: iso || null, title: iso || null }, fmtTime(iso));
}

function kindBadge(kind) {
  return h('span', { class: `badge badge-${kind === 'real' ? 'real' : 'sim'}`, dataset: { kind } },
    kind === 'real' ? 'real' : 'simulated');
}

function resultBadge(f) {
  if (f.state === 'completed') return h('span', { class: 'badge badge-ok' }, 'completed');
  if (f.state === 'failed') return h('span', { class: 'badge badge-fail' }, 'failed');
  return h('span', { class: 'badge badge-run' }, `running: ${PHASE_LABEL[f.state] || f.state}`);
}

function showBanner(text) {
  const b = $('banner');
  b.textContent = text;
  b.hidden = !text;
}

/* ---------- API ---------- */

class SignedOut extends Error {}

async function api(path, { method = 'GET', body } = {}) {
  const gen = state.generation;
  const headers = { Accept: 'application/json' };
  if (method !== 'GET') headers['X-Dumont-Request'] = '1'; /* dashboard.h D2 */
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const r = await fetch(path, init);
  if (gen !== state.generation) throw new SignedOut('signed out meanwhile');
  if (r.status === 401 && state.signedIn) {
    signedOutUi('Your session has ended. Sign in again.');
    throw new SignedOut('session ended');
  }
  if (r.status === 204) return null;
  let data = null;
  try { data = await r.json(); } catch (e) { data = null; }
  if (!r.ok) {
    const err = new Error((data && data.detail) || `${method} ${path}: HTTP ${r.status}`);
    err.status = r.status;
    throw err;
  }
  return data;
}

function reportError(e) {
  if (e instanceof SignedOut) return;
  showBanner(`Could not load data: ${e.message}`);
}

/* ---------- sign-in / sign-out ---------- */

async function signIn(ev) {
  ev.preventDefault();
  const input = $('token');
  const errEl = $('signin-error');
  const token = input.value.trim();
  errEl.textContent = '';
  if (!token) {
    errEl.textContent = 'Enter the API token.';
    input.focus();
    return;
  }
  let r;
  try {
    r = await fetch('/api/session', {
      method: 'POST', credentials: 'same-origin', cache: 'no-store',
      headers: { 'Content-Type': 'application/json', 'X-Dumont-Request': '1' },
      body: JSON.stringify({ token }),
    });
  } catch (e) {
    errEl.textContent = 'The server did not answer. Is dumont server running?';
    return;
  } finally {
    input.value = ''; /* W1 */
  }
  if (r.status === 204) {
    await start();
    $('summary-h').focus();
    return;
  }
  errEl.textContent = r.status === 401 ? 'That token is not right.' :
    `Sign-in failed (HTTP ${r.status}).`;
  input.focus();
}

async function signOut() {
  try {
    await fetch('/api/session', {
      method: 'DELETE', credentials: 'same-origin', headers: { 'X-Dumont-Request': '1' },
    });
  } finally {
    signedOutUi('');
  }
}

function signedOutUi(message) {
  state.signedIn = false;
  state.generation++;
  if (state.es) state.es.close();
  state.es = null;
  clearTimeout(state.refreshTimer);
  clearTimeout(state.instanceTimer);
  state.live.clear();
  state.statusCache.clear();
  state.expanded.clear();
  $('app').hidden = true;
  $('signout').hidden = true;
  $('live-status').hidden = true;
  clear($('history-body'));
  showBanner('');
  $('signin').hidden = false;
  $('signin-error').textContent = message;
  $('token').focus();
}

async function start() {
  state.signedIn = true;
  $('signin').hidden = true;
  $('app').hidden = false;
  $('signout').hidden = false;
  $('live-status').hidden = false;
  showBanner('');
  try {
    const s = await api('/api/session');
    state.features = (s && s.features) || {};
  } catch (e) { reportError(e); }
  connectEvents();
  await refreshAll();
  renderInstances();
}

/* ---------- summary (1) ---------- */

async function loadReport() {
  const [r, t] = await Promise.all([api('/api/standby/failover/report?test=false'),
    api('/api/standby/failover/report?kind=real&test=true')]);
  state.report = r;
  state.testReport = t;
  if (!state.kind) { /* W5: real failovers when there are any; never all mixed */
    state.kind = r.real.total > 0 ? 'real' : t.real.total > 0 ? 'test' : 'simulated';
    pressKind(state.kind);
  }
  renderSummary();
}

/* The summary group shown (W5). */
function summaryGroup() {
  if (!state.report) return null;
  if (state.kind === 'test') return state.testReport && state.testReport.real;
  return state.report[state.kind];
}

function pressKind(kind) {
  for (const o of document.querySelectorAll('.segmented button')) {
    o.setAttribute('aria-pressed', String(o.dataset.kind === kind));
  }
}

const SUMMARY_EMPTY = {
  real: 'No real failovers yet. A real failover replaces the lost instance of a protected workload ' +
    '(`dumont instances launch`).',
  test: 'No tests yet. `dumont failover test-real ID` runs a real failover of a copy, without ' +
    'touching the original.',
  simulated: 'No simulated failovers yet. Try `dumont failover test-setup gpu_instance_id=12345` and then ' +
    '`dumont failover simulate 12345`.',
};

function renderSummary() {
  const g = summaryGroup();
  if (!g) return;
  $('summary').dataset.kind = state.kind;
  const set = (name, text, value) => {
    const el = document.querySelector(`[data-metric="${name}"]`);
    el.textContent = text;
    el.dataset.value = value === null || value === undefined ? '' : String(value);
  };
  set('mttr', fmtDuration(g.mttr_ms.mean), g.mttr_ms.mean);
  set('success-rate', fmtPercent(g.success_rate), g.success_rate);
  set('total-failovers', String(g.total), g.total);
  $('mttr-note').textContent = g.mttr_ms.count ?
    `p50 ${fmtDuration(g.mttr_ms.p50)} · p95 ${fmtDuration(g.mttr_ms.p95)} · max ${fmtDuration(g.mttr_ms.max)}` :
    'no successful failover yet';
  $('rate-note').textContent = `${g.succeeded} succeeded · ${g.failed} failed`;
  $('total-note').textContent = `${g.running} running now`;
  $('total-note').dataset.value = String(g.running);
  const empty = $('summary-empty');
  empty.hidden = g.total > 0;
  empty.textContent = SUMMARY_EMPTY[state.kind] || '';
  const means = PHASES.map((p) => ({ phase: p, duration_ms: g.phases[p].mean,
    status: g.phases[p].count ? 'ok' : 'pending' }));
  const wrap = clear($('phase-means'));
  wrap.append(phaseBar(means, { label: 'Mean time per phase' }));
  wrap.append(phaseStatsTable(g.phases));
}

function phaseStatsTable(phases) {
  const rows = PHASES.map((p) => {
    const s = phases[p];
    return h('tr', {},
      h('th', { scope: 'row' }, swatch(p), PHASE_LABEL[p]),
      h('td', { class: 'num' }, String(s.count)),
      h('td', { class: 'num' }, fmtDuration(s.mean)),
      h('td', { class: 'num' }, fmtDuration(s.p50)),
      h('td', { class: 'num' }, fmtDuration(s.p95)),
      h('td', { class: 'num' }, fmtDuration(s.max)));
  });
  return h('div', { class: 'table-wrap' }, h('table', { class: 'stats' },
    h('caption', { class: 'visually-hidden' }, 'Per-phase statistics'),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Phase'),
      ...['Count', 'Mean', 'p50', 'p95', 'Max'].map((t) => h('th', { scope: 'col', class: 'num' }, t)))),
    h('tbody', {}, rows)));
}

/* ---------- phase bars (2) ---------- */

function swatch(phase) {
  return h('span', { class: `swatch ph-${phase}`, 'aria-hidden': 'true' });
}

/* One coloured bar: a segment per phase that has a duration, its width the
 * phase's share of the sum. Accessible as an image with a full description. */
function phaseBar(phases, { compact = false, label = 'Phases' } = {}) {
  const timed = phases.filter((p) => p.duration_ms !== null && p.duration_ms !== undefined);
  const sum = timed.reduce((a, p) => a + p.duration_ms, 0);
  const parts = timed.map((p) => {
    const share = sum > 0 ? p.duration_ms / sum : 0;
    return { ...p, share };
  });
  const desc = parts.length ?
    parts.map((p) => `${PHASE_LABEL[p.phase]} ${fmtDuration(p.duration_ms)} ` +
      `(${(p.share * 100).toFixed(1)}%)${p.status === 'failed' ? ', failed' : ''}`).join('; ') :
    'no phase has finished yet';
  const bar = h('div', { class: `bar${compact ? ' bar-compact' : ''}`, role: 'img',
    'aria-label': `${label}: ${desc}` });
  for (const p of parts) {
    const seg = h('span', { class: `seg ph-${p.phase}${p.status === 'failed' ? ' seg-failed' : ''}`,
      title: `${PHASE_LABEL[p.phase]}: ${fmtDuration(p.duration_ms)} (${(p.share * 100).toFixed(1)}%)` });
    seg.style.width = `${(p.share * 100).toFixed(3)}%`; /* CSSOM: allowed by the CSP */
    if (!compact && p.share >= 0.1) seg.textContent = fmtDuration(p.duration_ms);
    bar.append(seg);
  }
  const running = phases.find((p) => p.status === 'running');
  if (running) bar.append(h('span', { class: `seg seg-running ph-${running.phase}`, title: `${PHASE_LABEL[running.phase]}: running` }));
  if (compact) return bar;
  const legend = h('ul', { class: 'legend' }, parts.map((p) => h('li', {},
    swatch(p.phase), h('span', { class: 'legend-name' }, PHASE_LABEL[p.phase]),
    h('span', { class: 'legend-val' }, `${fmtDuration(p.duration_ms)} · ${(p.share * 100).toFixed(1)}%`),
    p.status === 'failed' ? h('span', { class: 'badge badge-fail' }, 'failed') : null)));
  return h('div', { class: 'bar-block' }, bar, legend);
}

/* ---------- one failover's report: (2) bar, (3) snapshot, (4) inference ---------- */

function failoverReport(f) {
  const phaseRows = (f.phases || []).map((p) => h('tr', { class: `phase-${p.status}` },
    h('th', { scope: 'row' }, swatch(p.phase), PHASE_LABEL[p.phase] || p.phase),
    h('td', {}, h('span', { class: `st st-${p.status}` }, p.status)),
    h('td', { class: 'num' }, p.offset_ms === null ? '—' : `+${fmtDuration(p.offset_ms)}`),
    h('td', { class: 'num' }, fmtDuration(p.duration_ms)),
    h('td', {}, p.detail || '')));
  const inf = (f.phases || []).find((p) => p.phase === 'inference') || {};
  const real = f.kind === 'real';
  const dash = (v) => (v === null || v === undefined || v === '' ? '—' : String(v));
  const fmtBytes = (n) => (n === null || n === undefined ? '—' :
    n < 1048576 ? `${n} B` : `${(n / 1048576).toFixed(1)} MiB`);
  const infResult = real && f.inference_success === true ? 'PASSED' :
    real && f.inference_success === false ? 'FAILED' :
    inf.status === 'ok' ? 'PASSED' : inf.status === 'failed' ? 'FAILED' : '—';
  const storage = f.snapshot_storage;
  const simNote = real ?
    `Instance ${dash(f.old_instance_id)} → ${dash(f.new_instance_id)}` +
    `${f.test ? ' (test: the original keeps serving)' : ''}; restore: download ` +
    `${fmtDuration(f.restore_download_time_ms)}, decompress ${fmtDuration(f.restore_decompress_time_ms)}.` :
    'A simulated failover has no real snapshot: nothing is stored or restored.';
  return h('div', { class: 'report', dataset: { failoverId: f.failover_id } },
    h('div', { class: 'report-head' },
      h('span', { class: 'mono' }, f.failover_id), kindBadge(f.kind), resultBadge(f),
      h('span', {}, 'GPU ', h('span', { class: 'mono' }, String(f.gpu_instance_id))),
      h('span', {}, 'started ', timeEl(f.started_at)),
      h('span', {}, 'total ', h('strong', {}, fmtDuration(f.total_time_ms)))),
    f.reason ? h('p', { class: 'reason' }, `Reason: ${f.reason}`) : null,
    phaseBar(f.phases || [], { label: `Phases of ${f.failover_id}` }),
    h('div', { class: 'subcards' },
      h('section', { class: 'subcard', 'aria-label': 'Snapshot' },
        h('h4', {}, 'Snapshot'),
        h('dl', { class: 'kv' },
          h('dt', {}, 'Size'), h('dd', { dataset: { field: 'snapshot-size' } },
            real ? fmtBytes(f.snapshot_size_bytes) : '—'),
          h('dt', {}, 'Creation time'), h('dd', {},
            real && f.snapshot_creation_time_ms != null ? fmtDuration(f.snapshot_creation_time_ms) : '—'),
          h('dt', {}, 'Storage'), h('dd', { class: 'wrap-any', dataset: { field: 'snapshot-storage' },
            title: real ? f.snapshot_storage_url || storage || null : null }, real ? storageLabel(storage) : '—'),
          h('dt', {}, 'Compression'), h('dd', {}, real ? dash(f.snapshot_compression) : '—')),
        h('p', { class: 'note' }, simNote)),
      h('section', { class: 'subcard', 'aria-label': 'Inference test' },
        h('h4', {}, 'Inference test'),
        h('dl', { class: 'kv' },
          h('dt', {}, 'Model'), h('dd', {}, real ? dash(f.inference_model) : '—'),
          h('dt', {}, 'Time to answer'), h('dd', {}, fmtDuration(inf.duration_ms),
            inf.simulated ? h('span', { class: 'hint' }, ' (simulated)') : null),
          h('dt', {}, 'Result'), h('dd', {}, h('span', {
            class: `result result-${infResult.toLowerCase()}`, dataset: { field: 'inference-result' },
          }, infResult))),
        h('p', { class: 'note' }, real ?
          (f.inference_model ? `The model ${f.inference_model} was asked once the workload served.` : null) :
          'Simulated: the inference phase is timed, no model is asked.'))),
    h('details', { class: 'phase-table' }, h('summary', {}, 'Phase by phase'),
      h('div', { class: 'table-wrap' }, h('table', { class: 'phases' },
        h('thead', {}, h('tr', {}, ...['Phase', 'Status', 'Start', 'Duration', 'Detail'].map(
          (t, i) => h('th', { scope: 'col', class: i === 2 || i === 3 ? 'num' : null }, t)))),
        h('tbody', {}, phaseRows)))));
}

/* The record's storage name (backblaze_b2, cloudflare_r2, s3, file; its URL is
 * snapshot_storage_url, shown on hover), by its usual name; anything else (an
 * older record's URL) as it is. */
const STORAGE_NAME = { backblaze_b2: 'Backblaze B2', cloudflare_r2: 'Cloudflare R2', s3: 'S3',
  file: 'Local disk (file)' };
function storageLabel(v) {
  if (v === null || v === undefined || v === '') return '—';
  return STORAGE_NAME[v] || String(v);
}

async function getStatus(id) {
  const cached = state.statusCache.get(id);
  if (cached) return cached;
  const f = await api(`/api/standby/failover/status/${encodeURIComponent(id)}`);
  if (TERMINAL.has(f.state)) state.statusCache.set(id, f);
  return f;
}

/* An alert's link (docs/alerts.md) names a failover: #failover=ID. */
function linkedFailover() {
  const id = new URLSearchParams(location.hash.slice(1)).get('failover');
  return id && /^[A-Za-z0-9_-]{1,47}$/.test(id) ? id : null;
}

async function loadLatest() {
  const list = await api('/api/standby/failover/list?limit=20');
  const done = list.failovers.find((f) => TERMINAL.has(f.state));
  const box = clear($('latest'));
  const linked = linkedFailover();
  if (linked) {
    try {
      box.append(failoverReport(await getStatus(linked)));
      return list;
    } catch (e) {
      box.append(h('p', { class: 'empty' }, `Failover ${linked} is not known here.`));
    }
  }
  if (!done) {
    box.append(h('p', { class: 'empty' }, 'No finished failover yet.'));
    return list;
  }
  box.append(failoverReport(await getStatus(done.failover_id)));
  return list;
}

/* ---------- live panel ---------- */

function renderLive() {
  const box = clear($('live'));
  const items = [...state.live.values()].reverse();
  if (!items.length) {
    box.append(h('p', { class: 'empty' },
      'No failover is running. A failover appears here the moment it starts, and its ' +
      'phases fill in as they happen.'));
    return;
  }
  for (const f of items) {
    const steps = h('ol', { class: 'steps' }, (f.phases || []).map((p) => h('li', {
      class: `step step-${p.status}`, dataset: { phase: p.phase, status: p.status },
    }, h('span', { class: 'step-icon', 'aria-hidden': 'true' },
      { ok: '✓', failed: '✗', running: '●', pending: '○' }[p.status] || '○'),
    h('span', { class: 'step-name' }, PHASE_LABEL[p.phase] || p.phase),
    h('span', { class: 'step-val' }, p.status === 'ok' || p.status === 'failed' ?
      fmtDuration(p.duration_ms) : p.status))));
    box.append(h('article', { class: `live-item live-${TERMINAL.has(f.state) ? f.state : 'running'}`,
      dataset: { failoverId: f.failover_id, state: f.state } },
    h('div', { class: 'report-head' }, h('span', { class: 'mono' }, f.failover_id),
      kindBadge(f.kind), resultBadge(f),
      h('span', {}, 'GPU ', h('span', { class: 'mono' }, String(f.gpu_instance_id))),
      h('span', {}, 'started ', timeEl(f.started_at)),
      TERMINAL.has(f.state) ? h('span', {}, 'total ', h('strong', {}, fmtDuration(f.total_time_ms))) : null),
    phaseBar(f.phases || [], { compact: true, label: `Progress of ${f.failover_id}` }),
    steps,
    f.reason ? h('p', { class: 'reason' }, `Reason: ${f.reason}`) : null));
  }
}

function trackLive(f) {
  state.live.delete(f.failover_id);
  state.live.set(f.failover_id, f); /* newest last */
  const finished = [...state.live.values()].filter((x) => TERMINAL.has(x.state));
  while (finished.length > LIVE_KEEP) state.live.delete(finished.shift().failover_id);
}

/* ---------- history (5) ---------- */

function historyQuery() {
  const q = new URLSearchParams({ limit: String(state.pageSize),
    offset: String(state.page * state.pageSize) });
  const f = state.filters;
  if (f.kind === 'test') { q.set('kind', 'real'); q.set('test', 'true'); } /* W5 */
  else if (f.kind === 'real') { q.set('kind', 'real'); q.set('test', 'false'); }
  else if (f.kind) q.set('kind', f.kind);
  if (f.gpu) q.set('gpu_instance_id', f.gpu);
  if (f.since) q.set('since', f.since);
  if (f.until) q.set('until', f.until);
  return q.toString();
}

async function loadHistory() {
  const data = await api(`/api/standby/failover/list?${historyQuery()}`);
  state.total = data.total;
  if (state.page > 0 && data.failovers.length === 0 && data.total > 0) {
    state.page = Math.floor((data.total - 1) / state.pageSize);
    return loadHistory();
  }
  renderHistory(data.failovers);
}

function renderHistory(rows) {
  const body = clear($('history-body'));
  const first = state.total ? state.page * state.pageSize + 1 : 0;
  const last = state.page * state.pageSize + rows.length;
  $('history-count').textContent = state.total ?
    `Showing ${first}–${last} of ${state.total} failovers` : 'No failovers match.';
  $('page-info').textContent = `Page ${state.page + 1} of ${Math.max(1, Math.ceil(state.total / state.pageSize))}`;
  $('prev').disabled = state.page === 0;
  $('next').disabled = last >= state.total;
  const empty = $('history-empty');
  empty.hidden = rows.length > 0;
  empty.textContent = state.filters.kind === 'test' ?
    'No tests. `dumont failover test-real ID` runs one.' : state.filters.kind === 'real' ?
    'No real failovers. Real failovers arrive when the instance serving a protected workload ' +
    '(`dumont instances launch`) is lost, or from `dumont failover test-real ID`.' : 'No failover matches these filters.';
  for (const f of rows) {
    const id = f.failover_id;
    const detailId = `detail-${id}`;
    const open = state.expanded.has(id);
    const btn = h('button', { type: 'button', class: 'expand', 'aria-expanded': open ? 'true' : 'false',
      'aria-controls': detailId, 'aria-label': `Details of ${id}`, onclick: () => toggleRow(id) },
    h('span', { 'aria-hidden': 'true' }, '▸'));
    const barCell = h('td', { class: 'bar-col' });
    body.append(h('tr', { class: 'row', dataset: { failoverId: id, kind: f.kind, state: f.state } },
      h('td', {}, btn),
      h('td', {}, timeEl(f.started_at)),
      h('td', { class: 'mono' }, id),
      h('td', { class: 'mono' }, String(f.gpu_instance_id)),
      h('td', {}, kindBadge(f.kind)),
      h('td', {}, resultBadge(f)),
      h('td', { class: 'num' }, fmtDuration(f.total_time_ms)),
      barCell));
    const detail = h('tr', { class: 'detail', id: detailId, hidden: !open, dataset: { failoverId: id } },
      h('td', { colspan: '8' }, h('div', { class: 'detail-box' })));
    body.append(detail);
    fillBar(id, barCell);
    if (open) fillDetail(id, detail);
  }
}

/* Each row's bar needs the phases (not in the list): fetched per row; a
 * finished failover's status is cached, so a refresh costs nothing. */
async function fillBar(id, cell) {
  try {
    const f = await getStatus(id);
    clear(cell).append(phaseBar(f.phases, { compact: true, label: `Phases of ${id}` }));
  } catch (e) { if (!(e instanceof SignedOut)) cell.textContent = '—'; }
}

async function fillDetail(id, tr) {
  const box = tr.querySelector('.detail-box');
  if (!box.firstChild) box.append(h('p', { class: 'muted' }, 'Loading…'));
  try {
    const f = await getStatus(id);
    clear(box).append(failoverReport(f));
  } catch (e) {
    if (!(e instanceof SignedOut)) clear(box).append(h('p', { class: 'error' }, e.message));
  }
}

function toggleRow(id) {
  const tr = document.getElementById(`detail-${id}`);
  const btn = document.querySelector(`button[aria-controls="detail-${CSS.escape(id)}"]`);
  const open = !state.expanded.has(id);
  if (open) state.expanded.add(id); else state.expanded.delete(id);
  btn.setAttribute('aria-expanded', String(open));
  tr.hidden = !open;
  if (open) fillDetail(id, tr);
}

/* datetime-local (local time, no zone) -> ISO-8601 UTC for the API. */
function localToIso(v) {
  if (!v) return '';
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

async function applyFilters(ev) {
  if (ev) ev.preventDefault();
  const err = $('filter-error');
  err.textContent = '';
  const gpu = $('f-gpu').value.trim();
  if (gpu && !/^[1-9][0-9]{0,15}$/.test(gpu)) {
    err.textContent = 'GPU instance must be a whole number from 1.';
    $('f-gpu').focus();
    return;
  }
  const since = localToIso($('f-since').value);
  const until = localToIso($('f-until').value);
  if (since === null || until === null) {
    err.textContent = 'Enter dates as shown, e.g. 2026-11-28 12:00.';
    return;
  }
  if (since && until && since > until) {
    err.textContent = '“Since” must be before “Until”.';
    $('f-since').focus();
    return;
  }
  state.filters = { kind: $('f-kind').value, gpu, since, until };
  state.page = 0;
  await loadHistory().catch(reportError);
}

/* Period presets: since = now minus the period (local time in the field), no until. */
const PRESETS = { '1h': 3600e3, '24h': 86400e3, '7d': 7 * 86400e3, '30d': 30 * 86400e3 };
function localValue(ms) {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
function applyPreset(name) {
  $('f-since').value = localValue(Date.now() - PRESETS[name]);
  $('f-until').value = '';
  for (const b of document.querySelectorAll('.presets button')) {
    b.setAttribute('aria-pressed', String(b.dataset.preset === name));
  }
  applyFilters();
}

function resetFilters() {
  for (const b of document.querySelectorAll('.presets button')) b.setAttribute('aria-pressed', 'false');
  $('filters').reset();
  applyFilters();
}

/* ---------- instances ---------- */

const INSTANCE_POLL_MS = 2000;
const STATE_BADGE = { healthy: 'badge-ok', suspect: 'badge-run', failed: 'badge-fail' };

/* A snapshot id (64 hex) shortened to 12, the whole id in its title and on
 * the copy button (W7). */
function shortId(id) {
  if (!id) return '—';
  const full = String(id);
  const wrap = h('span', { class: 'short-id' },
    h('code', { class: 'mono', title: full, dataset: { full } }, full.length > 12 ? `${full.slice(0, 12)}…` : full));
  if (full.length > 12) {
    wrap.append(h('button', { type: 'button', class: 'copy', title: `Copy ${full}`,
      'aria-label': `Copy snapshot id ${full}`, dataset: { copy: full }, onclick: (ev) => copyText(ev.currentTarget, full) },
    'copy'));
  }
  return wrap;
}

async function copyText(btn, text) {
  try {
    await navigator.clipboard.writeText(text);
    btn.textContent = 'copied';
  } catch (e) { /* no clipboard (insecure origin): select the id instead */
    const r = document.createRange();
    r.selectNodeContents(btn.previousSibling);
    const sel = getSelection();
    sel.removeAllRanges();
    sel.addRange(r);
  }
  setTimeout(() => { btn.textContent = 'copy'; }, 1500);
}

/* W7: a destroyed machine has no live state: its workload, probe and
 * heartbeat are not shown as if it still ran. Host is the provider's host
 * of the machine (host), else what its agent reported (hostname). */
function instanceRow(i) {
  const gone = i.machine_state === 'destroyed' || i.state === 'destroyed';
  const live = (v) => (gone ? '—' : v || '—');
  return h('tr', { class: gone ? 'gone' : null,
    dataset: { instanceId: String(i.instance_id), machineState: i.machine_state || '' } },
  h('td', { class: 'mono' }, String(i.instance_id)),
  h('td', {}, i.kind || '—'),
  h('td', {}, h('span', { class: `badge ${gone ? 'badge-gone' : STATE_BADGE[i.state] || 'badge-sim'}` },
    gone ? 'destroyed' : i.state || '—'),
  !gone && i.preempting ? h('span', { class: 'badge badge-fail' }, 'preempting') : null),
  h('td', { class: 'num' }, gone || i.last_heartbeat_age_ms === null || i.last_heartbeat_age_ms === undefined ?
    '—' : `${fmtDuration(i.last_heartbeat_age_ms)} ago`),
  h('td', { dataset: { field: 'workload' } }, live(i.workload)),
  h('td', { dataset: { field: 'probe' } }, live(i.probe)),
  h('td', { dataset: { field: 'host' } }, i.host || i.hostname || '—'),
  h('td', { dataset: { field: 'snapshot' } }, shortId(i.newest_snapshot_id || i.snapshot_id)));
}

/* Instances come from the agent issue's GET /api/instances; the heartbeat
 * age changes every moment, so the view polls while it is shown. */
async function renderInstances() {
  const box = $('instances');
  clearTimeout(state.instanceTimer);
  if (!state.features.instances) {
    clear(box).append(h('p', { class: 'empty' },
      'No instance view yet: GPU and standby instances report here once the agent ' +
      '(heartbeats, failure detection) lands. This server does not serve /api/instances.'));
    return;
  }
  try {
    const all = $('inst-all').checked; /* destroyed machines only when asked (API-RI1) */
    const data = await api(`/api/instances${all ? '?all=true' : ''}`);
    const list = (data && data.instances) || [];
    clear(box);
    if (!list.length) {
      box.append(h('p', { class: 'empty' },
        'No instance has registered yet. Start `dumont agent` on a GPU or standby machine.'));
    } else {
      box.append(h('div', { class: 'table-wrap' }, h('table', { class: 'history instances' },
        h('caption', { class: 'visually-hidden' }, 'Instances'),
        h('thead', {}, h('tr', {}, ['Instance', 'Kind', 'State', 'Last heartbeat', 'Workload',
          'Probe', 'Host', 'Newest snapshot'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, list.map(instanceRow)))));
    }
  } catch (e) { reportError(e); }
  if (state.signedIn) state.instanceTimer = setTimeout(renderInstances, INSTANCE_POLL_MS);
}

/* ---------- live events ---------- */

function setLiveStatus(ok, text) {
  $('live-status').classList.toggle('ok', ok);
  $('live-status-text').textContent = text;
}

function connectEvents() {
  if (state.es) state.es.close();
  const es = new EventSource('/api/events');
  state.es = es;
  let opened = false;
  es.addEventListener('hello', () => {
    setLiveStatus(true, 'live');
    if (opened) scheduleRefresh(0); /* a reconnect: we may have missed events */
    opened = true;
  });
  es.addEventListener('failover', (ev) => {
    let f;
    try { f = JSON.parse(ev.data); } catch (e) { return; }
    if (TERMINAL.has(f.state)) state.statusCache.set(f.failover_id, f);
    else state.statusCache.delete(f.failover_id);
    trackLive(f);
    renderLive();
    scheduleRefresh(REFRESH_DEBOUNCE_MS);
  });
  es.addEventListener('resync', () => scheduleRefresh(0));
  es.addEventListener('error', () => {
    if (state.es !== es) return;
    setLiveStatus(false, es.readyState === EventSource.CLOSED ? 'offline' : 'reconnecting…');
    if (es.readyState === EventSource.CLOSED) { /* e.g. the session ended: ask, do not loop */
      state.es = null;
      api('/api/session').then((s) => {
        if (s && s.authenticated) setTimeout(() => { if (state.signedIn && !state.es) connectEvents(); }, 3000);
        else if (state.signedIn) signedOutUi('Your session has ended. Sign in again.');
      }).catch(() => {});
    }
  });
}

function scheduleRefresh(delay) {
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(() => refreshAll(), delay);
}

async function refreshAll() {
  try {
    const [, list] = await Promise.all([loadReport(), loadLatest(), loadHistory()]);
    void list;
  } catch (e) { reportError(e); }
  /* Running failovers found at load (or missed while offline) join the live panel. */
  try {
    const recent = await api('/api/standby/failover/list?active=true&limit=1000'); /* W6 */
    for (const f of recent.failovers.filter((x) => !TERMINAL.has(x.state)).reverse()) {
      if (!state.live.has(f.failover_id) || !TERMINAL.has(state.live.get(f.failover_id).state)) {
        trackLive(await api(`/api/standby/failover/status/${encodeURIComponent(f.failover_id)}`));
      }
    }
    for (const [id, f] of state.live) { /* finished while we were not listening */
      if (!TERMINAL.has(f.state) && !recent.failovers.some((x) => x.failover_id === id && !TERMINAL.has(x.state))) {
        trackLive(await api(`/api/standby/failover/status/${encodeURIComponent(id)}`));
      }
    }
  } catch (e) { reportError(e); }
  renderLive();
}

/* ---------- wiring ---------- */

function wire() {
  $('signin-form').addEventListener('submit', signIn);
  $('signout').addEventListener('click', signOut);
  $('filters').addEventListener('submit', applyFilters);
  $('f-reset').addEventListener('click', resetFilters);
  $('prev').addEventListener('click', () => {
    if (state.page > 0) { state.page--; loadHistory().catch(reportError); }
  });
  $('next').addEventListener('click', () => {
    if ((state.page + 1) * state.pageSize < state.total) { state.page++; loadHistory().catch(reportError); }
  });
  $('page-size').addEventListener('change', (ev) => {
    state.pageSize = Number(ev.target.value) || 25;
    state.page = 0;
    loadHistory().catch(reportError);
  });
  for (const b of document.querySelectorAll('.segmented button')) {
    b.addEventListener('click', () => {
      state.kind = b.dataset.kind;
      pressKind(state.kind);
      renderSummary();
    });
  }
  for (const b of document.querySelectorAll('.presets button')) {
    b.addEventListener('click', () => applyPreset(b.dataset.preset));
  }
  $('inst-all').addEventListener('change', () => { if (state.signedIn) renderInstances(); });
}

async function boot() {
  wire();
  window.dumontBootedAt = Date.now(); /* tests check the page was never reloaded */
  let s = null;
  try { s = await (await fetch('/api/session', { credentials: 'same-origin', cache: 'no-store' })).json(); } catch (e) { s = null; }
  if (s && s.authenticated) {
    await start();
  } else {
    $('signin').hidden = false;
    $('token').focus();
  }
}

document.addEventListener('DOMContentLoaded', boot);
