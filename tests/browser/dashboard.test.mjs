// Browser test of the dashboard: headless Chromium (Debian's) driven by
// playwright-core (a version whose engines allow Debian 12's Node.js 18),
// against a real `dumont server` that tests/integration/test_dashboard.sh
// started and filled with failovers.
//
//   DUMONT_URL            the server, e.g. http://127.0.0.1:23456
//   DUMONT_TOKEN_FILE     the API token file (read here; never on a command line)
//   DASHBOARD_SCREENSHOT  where to write the screenshot (PNG); a narrow-window
//                         one goes next to it (-narrow.png)
//   LIVE_GPU              a GPU with a test-setup association and no failover
//                         running: the test starts one there and watches it live
//   SLOW_ID               a failover running all along, older than the 10 newest
//   CHROMIUM              the browser (default /usr/bin/chromium)
//
// Checks: sign-in (keyboard only) trades the token for an HttpOnly,
// SameSite=Strict cookie and the token is nowhere in the page; the numbers
// shown equal GET /report's; paging, filters (GPU, kind, since, until) and
// row expansion work; a failover started during the test shows up live,
// phase by phase, without a reload; a narrow window does not scroll
// sideways; sign-out ends the session; no console error anywhere. Since the
// server also holds real failovers and a test-real: the summary never mixes
// simulated, real and test figures (W5); Live shows every running failover,
// as many as the summary counts, though more than 10 finished since (W6); a
// real failover's report prints its note once and its storage as recorded;
// instances show short snapshot ids (whole on hover) and no live state for
// destroyed machines, the provider's host (W7); presets fill the period; the
// live steps fit one row at 1400 px; screenshots at 1400 and 1920 px.
import { readFileSync } from 'node:fs';
import { chromium } from 'playwright-core';

const BASE = process.env.DUMONT_URL;
const TOKEN = readFileSync(process.env.DUMONT_TOKEN_FILE, 'utf8').trim();
const SHOT = process.env.DASHBOARD_SCREENSHOT || 'dashboard.png';
const LIVE_GPU = Number(process.env.LIVE_GPU || 0);
const SLOW_ID = process.env.SLOW_ID || '';
const T = 10000; // default wait, ms

let step = '';
const log = (m) => process.stderr.write(`browser: ${m}\n`);
function check(cond, what) {
  if (!cond) throw new Error(`${step}: ${what}`);
}
function eq(got, want, what) {
  check(got === want, `${what}: expected ${JSON.stringify(want)}, got ${JSON.stringify(got)}`);
}

// The dashboard's own formatting (web/app.js), restated: a change there must
// be a deliberate change here.
function fmtDuration(ms) {
  if (ms === null || ms === undefined) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  const min = Math.floor(ms / 60000);
  return `${min} min ${((ms - min * 60000) / 1000).toFixed(1)} s`;
}
const PHASES = ['detection', 'standby_activation', 'gpu_search', 'provisioning', 'ssh_ready',
  'restore', 'inference'];
const fmtPercent = (r) => (r === null || r === undefined ? '—' : `${(r * 100).toFixed(1)}%`);

async function api(path, { method = 'GET', body } = {}) {
  const r = await fetch(BASE + path, {
    method,
    headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${path}: HTTP ${r.status}: ${text}`);
  return text ? JSON.parse(text) : null;
}

// datetime-local value (local time, seconds) of an ISO instant, truncated to the second.
function localInput(iso) {
  const d = new Date(iso);
  const p = (n) => String(n).padStart(2, '0');
  // Chromium normalises ":00" seconds away; Playwright wants the value back as given.
  const sec = d.getSeconds() ? `:${p(d.getSeconds())}` : '';
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}${sec}`;
}
const truncIso = (iso) => new Date(new Date(iso).setMilliseconds(0)).toISOString();

const launchArgs = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--disable-dev-shm-usage'];

function watchConsole(page, sink) {
  // Chromium ends a fetch answered "204 No Content" with net::ERR_ABORTED
  // although the page's fetch resolves; playwright-core before 1.64 reports
  // that as requestfailed (microsoft/playwright#42786). The response event
  // comes first: such a request had its answer and is not a fault.
  const answered204 = new WeakSet();
  page.on('response', (resp) => { if (resp.status() === 204) answered204.add(resp.request()); });
  page.on('console', (m) => { if (m.type() === 'error') sink.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => sink.push(`pageerror: ${e.message}`));
  page.on('requestfailed', (r) => {
    if (answered204.has(r)) return;
    // An EventSource torn down on navigation or close is not a fault.
    if (!r.url().endsWith('/api/events')) {
      sink.push(`requestfailed: ${r.method()} ${r.url()} ${r.failure()?.errorText} (step '${step}')`);
    }
  });
}

async function metricText(page, name) {
  return (await page.locator(`[data-metric="${name}"]`).textContent()).trim();
}

async function expectSummary(page, group, label) {
  for (const [name, want] of [
    ['mttr', fmtDuration(group.mttr_ms.mean)],
    ['success-rate', fmtPercent(group.success_rate)],
    ['total-failovers', String(group.total)],
  ]) {
    await page.waitForFunction(([n, w]) =>
      document.querySelector(`[data-metric="${n}"]`)?.textContent.trim() === w, [name, want], { timeout: T })
      .catch(async () => eq(await metricText(page, name), want, `${label} ${name}`));
  }
}

async function historyIds(page) {
  return page.locator('#history-body tr.row').evaluateAll((rows) => rows.map((r) => r.dataset.failoverId));
}

async function waitCount(page, text) {
  await page.waitForFunction((t) => document.getElementById('history-count').textContent === t, text,
    { timeout: T }).catch(async () =>
    eq(await page.locator('#history-count').textContent(), text, 'history count line'));
}

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: launchArgs, headless: true,
  });
  const errors = [];
  try {
    // ---- a wrong token is refused (its own context: that 401 is expected) ----
    step = 'wrong token';
    {
      const ctx = await browser.newContext();
      const page = await ctx.newPage();
      const errs = [];
      watchConsole(page, errs);
      await page.goto(BASE + '/');
      await page.locator('#token').waitFor({ state: 'visible', timeout: T });
      check(await page.locator('#live-status').isHidden(), 'no live status ("connecting…") on the sign-in page');
      await page.locator('#token').fill('not-the-token');
      await page.keyboard.press('Enter');
      await page.locator('#signin-error', { hasText: 'not right' }).waitFor({ timeout: T });
      check((await ctx.cookies()).every((c) => c.name !== 'dumont_session'), 'no cookie after a wrong token');
      const unexpected = errs.filter((e) => !/401/.test(e));
      check(unexpected.length === 0, `unexpected errors: ${unexpected.join(' | ')}`);
      await ctx.close();
    }

    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await ctx.newPage();
    watchConsole(page, errors);

    // ---- static files carry the security headers ----
    step = 'static headers';
    const resp = await page.goto(BASE + '/');
    const hdr = resp.headers();
    check(/default-src 'self'/.test(hdr['content-security-policy'] || ''), 'CSP default-src self');
    eq(hdr['x-content-type-options'], 'nosniff', 'X-Content-Type-Options');

    // ---- sign in with the keyboard only ----
    step = 'sign-in';
    await page.locator('#token').waitFor({ state: 'visible', timeout: T });
    eq(await page.evaluate(() => document.activeElement?.id), 'token', 'the token field has focus');
    await page.keyboard.type(TOKEN);
    await page.keyboard.press('Enter');
    await page.locator('#app').waitFor({ state: 'visible', timeout: T });
    const cookie = (await ctx.cookies()).find((c) => c.name === 'dumont_session');
    check(cookie, 'a dumont_session cookie is set');
    check(cookie.httpOnly, 'the cookie is HttpOnly');
    eq(cookie.sameSite, 'Strict', 'the cookie is SameSite=Strict');
    check(!page.url().includes(TOKEN), 'the token is not in the URL');
    const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));
    check(!stored.includes(TOKEN), 'the token is not in page storage');
    eq(await page.locator('#token').inputValue(), '', 'the token field is cleared');
    check(!(await page.content()).includes(TOKEN), 'the token is nowhere in the page');
    await page.locator('#live-status.ok').waitFor({ timeout: T }); // event stream open
    const bootedAt = await page.evaluate(() => window.dumontBootedAt);

    // ---- (1) the numbers shown are the API's, one group at a time (W5) ----
    step = 'summary';
    const whole = await api('/api/standby/failover/report');
    const report = await api('/api/standby/failover/report?test=false');
    const tests = (await api('/api/standby/failover/report?kind=real&test=true')).real;
    check(whole.all.total > 25, `the server holds more than a page of failovers (has ${whole.all.total})`);
    check(whole.all.failed > 0, 'some failovers failed (fail_phase)');
    check(report.real.total > 0 && tests.total > 0, 'the server holds a real failover and a test-real');
    check(report.real.total + tests.total === whole.real.total, 'tests and real failovers split the real ones');
    eq(await page.locator('.segmented button[data-kind="all"]').count(), 0, 'no "All" group mixing kinds');
    eq(await page.locator('.segmented button[aria-pressed="true"]').getAttribute('data-kind'), 'real',
      'real failovers are shown first when there are some');
    await expectSummary(page, report.real, 'real');
    const meanLegend = () => page.locator('#phase-means .legend li .legend-name').allTextContents();
    const realPhases = PHASES.filter((p) => report.real.phases[p].count > 0).length;
    eq((await meanLegend()).length, realPhases, 'real: one legend entry per phase it had');
    await page.locator('.segmented button[data-kind="test"]').click();
    await expectSummary(page, tests, 'tests');
    check(!(await meanLegend()).includes('Detection'), 'tests have no detection phase, so none is shown');
    await page.locator('.segmented button[data-kind="simulated"]').click();
    await expectSummary(page, report.simulated, 'simulated');
    eq((await meanLegend()).length, 7, 'mean-per-phase legend has 7 phases');
    eq(await page.locator('#total-note').getAttribute('data-value'), String(report.simulated.running),
      'simulated: running now');

    // ---- live: every running failover, though more than 10 finished since (W6) ----
    step = 'live agrees with the summary';
    check(SLOW_ID, 'SLOW_ID is set');
    const newest10 = (await api('/api/standby/failover/list?limit=10')).failovers;
    check(!newest10.some((f) => f.failover_id === SLOW_ID), 'the running one is older than the 10 newest');
    check(whole.all.running >= 1, 'the summary counts a running failover');
    await page.locator(`#live article[data-failover-id="${SLOW_ID}"]`).waitFor({ timeout: T });
    eq(await page.locator('#live article.live-running').count(), whole.all.running,
      'Live shows as many running failovers as the summary counts');
    check(!(await page.locator('#live').textContent()).includes('No failover is running'),
      'Live does not say none is running');

    // ---- (2)-(4) latest report ----
    step = 'latest report';
    const latest = page.locator('#latest .report');
    await latest.waitFor({ timeout: T });
    check(await latest.locator('.bar .seg').count() >= 1, 'the latest failover has a phase bar');
    eq(await latest.locator('[data-field="snapshot-size"]').textContent(), '—', 'snapshot size is a dash');
    check(/PASSED|FAILED|—/.test(await latest.locator('[data-field="inference-result"]').textContent()),
      'inference result shown');

    // ---- an alert's link (docs/alerts.md): #failover=ID shows that failover ----
    step = 'alert link';
    {
      const done = (await api('/api/standby/failover/list?limit=1000')).failovers
        .filter((f) => f.success !== null);
      const older = done[done.length - 1]; /* not the newest: the panel's default */
      check(older && older.failover_id !== done[0].failover_id, 'an older finished failover exists');
      const linked = await ctx.newPage();
      watchConsole(linked, errors);
      await linked.goto(`${BASE}/#failover=${older.failover_id}`);
      await linked.locator(`#latest .report[data-failover-id="${older.failover_id}"]`)
        .waitFor({ timeout: T });
      await linked.close();
    }

    // ---- a real failover's report: its note once, its storage as recorded ----
    step = 'real report';
    {
      const realOne = (await api('/api/standby/failover/list?kind=real&test=false&limit=1')).failovers[0];
      const st = await api(`/api/standby/failover/status/${realOne.failover_id}`);
      const linked = await ctx.newPage();
      watchConsole(linked, errors);
      await linked.goto(`${BASE}/#failover=${realOne.failover_id}`);
      const rep = linked.locator(`#latest .report[data-failover-id="${realOne.failover_id}"]`);
      await rep.waitFor({ timeout: T });
      const notes = await rep.locator('.note').allTextContents();
      eq(notes.filter((n) => n.includes('restore: download')).length, 1, 'the instance/restore note is printed once');
      const names = { backblaze_b2: 'Backblaze B2', cloudflare_r2: 'Cloudflare R2', s3: 'S3', file: 'Local disk (file)' };
      eq(await rep.locator('[data-field="snapshot-storage"]').textContent(),
        names[st.snapshot_storage] || st.snapshot_storage, 'storage is what the record says');
      await linked.setViewportSize({ width: 1400, height: 1000 });
      await linked.locator('.segmented button[data-kind="real"]').click();
      await rep.screenshot({ path: SHOT.replace(/\.png$/, '') + '-real-report.png' });
      await linked.locator('#summary').screenshot({ path: SHOT.replace(/\.png$/, '') + '-real-summary.png' });
      await linked.close();
    }

    // ---- (5) history and paging ----
    step = 'history';
    const all = await api('/api/standby/failover/list?limit=1000');
    await waitCount(page, `Showing 1–25 of ${all.total} failovers`);
    const page1 = await historyIds(page);
    eq(JSON.stringify(page1), JSON.stringify(all.failovers.slice(0, 25).map((f) => f.failover_id)),
      'page 1 rows are the API\'s first 25, newest first');
    check(await page.locator('#history-body tr.row .badge-sim').count() === 25, 'each row has a simulated badge');
    await page.locator('#history-body tr.row .bar .seg').first().waitFor({ timeout: T });
    await page.locator('#next').click();
    await waitCount(page, `Showing 26–${Math.min(50, all.total)} of ${all.total} failovers`);
    eq(JSON.stringify(await historyIds(page)),
      JSON.stringify(all.failovers.slice(25, 50).map((f) => f.failover_id)), 'page 2 rows');
    await page.locator('#prev').click();
    await waitCount(page, `Showing 1–25 of ${all.total} failovers`);

    // ---- filters ----
    step = 'filter by GPU';
    const gpu = all.failovers[all.failovers.length - 1].gpu_instance_id;
    const byGpu = await api(`/api/standby/failover/list?gpu_instance_id=${gpu}&limit=1000`);
    check(byGpu.total > 0 && byGpu.total < all.total, 'the GPU filter selects some, not all');
    await page.locator('#f-gpu').fill(String(gpu));
    await page.locator('#f-gpu').press('Enter');
    await waitCount(page, `Showing 1–${Math.min(25, byGpu.total)} of ${byGpu.total} failovers`);
    const gpus = await page.locator('#history-body tr.row td:nth-child(4)').allTextContents();
    check(gpus.every((g) => g === String(gpu)), `every row is GPU ${gpu}: ${gpus.join(',')}`);

    step = 'filter by kind=real, kind=test';
    await page.locator('#f-reset').click();
    await waitCount(page, `Showing 1–25 of ${all.total} failovers`);
    await page.locator('#f-kind').selectOption('real');
    await page.locator('#filters button[type="submit"]').click();
    await waitCount(page, `Showing 1–${report.real.total} of ${report.real.total} failovers`);
    check((await page.locator('#history-body tr.row').evaluateAll((r) => r.map((x) => x.dataset.kind)))
      .every((k) => k === 'real'), 'only real rows');
    await page.locator('#f-kind').selectOption('test');
    await page.locator('#filters button[type="submit"]').click();
    await waitCount(page, `Showing 1–${tests.total} of ${tests.total} failovers`);

    step = 'period presets';
    await page.locator('#f-reset').click();
    await waitCount(page, `Showing 1–25 of ${all.total} failovers`);
    const hourAgo = Date.now() - 3600e3;
    await page.locator('.presets button[data-preset="1h"]').click();
    const sinceVal = await page.locator('#f-since').inputValue();
    check(Math.abs(new Date(sinceVal).getTime() - hourAgo) < 10000, `"Last hour" sets since to an hour ago (${sinceVal})`);
    const lastHour = await api(`/api/standby/failover/list?since=${encodeURIComponent(new Date(sinceVal).toISOString())}&limit=1`);
    await waitCount(page, `Showing 1–${Math.min(25, lastHour.total)} of ${lastHour.total} failovers`);
    for (const p of ['24h', '7d', '30d']) {
      check(await page.locator(`.presets button[data-preset="${p}"]`).isVisible(), `preset ${p}`);
    }

    step = 'filter by period';
    await page.locator('#f-reset').click();
    const newest = all.failovers[0].started_at;
    const since = truncIso(newest);
    const bySince = await api(`/api/standby/failover/list?since=${encodeURIComponent(since)}&limit=1000`);
    check(bySince.total > 0 && bySince.total < all.total, `since ${since} selects some, not all (${bySince.total})`);
    await page.locator('#f-since').fill(localInput(newest));
    await page.locator('#filters button[type="submit"]').click();
    await waitCount(page, `Showing 1–${Math.min(25, bySince.total)} of ${bySince.total} failovers`);
    const byUntil = await api(`/api/standby/failover/list?since=${encodeURIComponent(since)}&until=${encodeURIComponent(since)}&limit=1000`);
    await page.locator('#f-until').fill(localInput(newest));
    await page.locator('#filters button[type="submit"]').click();
    await waitCount(page, byUntil.total ? `Showing 1–${Math.min(25, byUntil.total)} of ${byUntil.total} failovers` : 'No failovers match.');
    await page.locator('#f-since').fill('2099-01-01T00:00');
    await page.locator('#f-until').fill('');
    await page.locator('#filters button[type="submit"]').click();
    await waitCount(page, 'No failovers match.');
    await page.locator('#f-reset').click();
    await waitCount(page, `Showing 1–25 of ${all.total} failovers`);

    // ---- row expansion, by keyboard ----
    step = 'row expansion';
    const failed = all.failovers.slice(0, 25).find((f) => f.state === 'failed');
    check(failed, 'a failed failover is on page 1');
    const btn = page.locator(`#history-body tr.row[data-failover-id="${failed.failover_id}"] button.expand`);
    await btn.focus();
    await page.keyboard.press('Enter');
    eq(await btn.getAttribute('aria-expanded'), 'true', 'aria-expanded after Enter');
    const detail = page.locator(`#detail-${failed.failover_id}`);
    await detail.locator('.report').waitFor({ timeout: T });
    const status = await api(`/api/standby/failover/status/${failed.failover_id}`);
    check((await detail.locator('.reason').textContent()).includes(status.reason), 'the failure reason is shown');
    const failedPhase = status.phases.find((p) => p.status === 'failed');
    await detail.locator('details.phase-table summary').click();
    await detail.locator(`tr.phase-failed`, { hasText: 'failed' }).waitFor({ timeout: T });
    check(failedPhase, 'the API names the failed phase');
    eq(await detail.locator('.legend li').count(), status.phases.filter((p) => p.duration_ms !== null).length,
      'one legend entry per timed phase');
    await btn.focus();
    await page.keyboard.press('Space');
    eq(await btn.getAttribute('aria-expanded'), 'false', 'collapsed again with Space');
    check(await detail.isHidden(), 'the detail row is hidden again');

    // ---- live: a failover started now appears without reload ----
    step = 'live failover';
    check(LIVE_GPU > 0, 'LIVE_GPU is set');
    const before = Number(await metricText(page, 'total-failovers'));
    const started = await api(`/api/standby/failover/simulate/${LIVE_GPU}`, {
      method: 'POST', body: { speed: 25, seed: 7 },
    });
    const id = started.failover_id;
    const item = page.locator(`#live article[data-failover-id="${id}"]`);
    await item.waitFor({ timeout: T });
    // A phase finishes while the failover is still running: the panel fills in.
    await page.waitForFunction((fid) => {
      const a = document.querySelector(`#live article[data-failover-id="${fid}"]`);
      return a && a.dataset.state !== 'completed' && a.dataset.state !== 'failed' &&
        a.querySelector('li[data-status="ok"]') && a.querySelector('li[data-status="running"]');
    }, id, { timeout: 30000 });
    await page.waitForFunction((fid) =>
      document.querySelector(`#live article[data-failover-id="${fid}"]`)?.dataset.state === 'completed',
    id, { timeout: 60000 });
    eq(await item.locator('li[data-status="ok"]').count(), 7, 'all seven phases ok in the live panel');
    await page.waitForFunction((fid) =>
      document.querySelector('#history-body tr.row')?.dataset.failoverId === fid, id, { timeout: T });
    await page.waitForFunction((n) =>
      document.querySelector('[data-metric="total-failovers"]').textContent.trim() === String(n), before + 1,
    { timeout: T });
    eq(await page.evaluate(() => window.dumontBootedAt), bootedAt, 'the page was not reloaded');
    step = 'summary after live';
    await expectSummary(page, (await api('/api/standby/failover/report?test=false')).simulated,
      'simulated after live');

    // ---- instances: a table, or an empty state saying why ----
    step = 'instances';
    await page.locator('#instances table').first().waitFor({ timeout: T });
    {
      const liveOnes = (await api('/api/instances')).instances;
      check(liveOnes.every((i) => i.machine_state !== 'destroyed'), 'the API hides destroyed machines by default');
      await page.waitForFunction((n) => document.querySelectorAll('#instances tbody tr').length === n,
        liveOnes.length, { timeout: T });
      await page.locator('#inst-all').check();
      const inst = (await api('/api/instances?all=true')).instances;
      const gone = inst.filter((i) => i.machine_state === 'destroyed');
      check(gone.length > 0, 'a destroyed machine is listed with all=true (the preempted one)');
      await page.waitForFunction((n) => document.querySelectorAll('#instances tbody tr').length === n,
        inst.length, { timeout: T });
      for (const i of gone) {
        const row = page.locator(`#instances tr[data-instance-id="${i.instance_id}"]`);
        eq(await row.locator('[data-field="workload"]').textContent(), '—', `destroyed ${i.instance_id}: no workload state`);
        eq(await row.locator('[data-field="probe"]').textContent(), '—', `destroyed ${i.instance_id}: no probe state`);
        check((await row.textContent()).includes('destroyed'), `destroyed ${i.instance_id} says so`);
      }
      for (const i of inst.filter((x) => x.host)) {
        eq(await page.locator(`#instances tr[data-instance-id="${i.instance_id}"] [data-field="host"]`).textContent(),
          i.host, `instance ${i.instance_id}: the provider's host`);
      }
      const withSnap = inst.filter((i) => i.newest_snapshot_id);
      check(withSnap.length > 0, 'an instance has a snapshot');
      for (const i of withSnap) {
        const code = page.locator(`#instances tr[data-instance-id="${i.instance_id}"] [data-field="snapshot"] code`);
        eq(await code.getAttribute('title'), i.newest_snapshot_id, 'the whole id on hover');
        check((await code.textContent()).length <= 13, 'the id is shortened');
      }
    }
    check(await page.locator('#banner').isHidden(), `no error banner (${await page.locator('#banner').textContent()})`);

    // ---- contrast: every visible text meets WCAG AA against its background ----
    step = 'contrast';
    const lowContrast = await page.evaluate(() => {
      const rgb = (s) => (s.match(/[\d.]+/g) || []).map(Number);
      const lum = ([r, g, b]) => {
        const f = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
        return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
      };
      const background = (el) => {
        for (let e = el; e; e = e.parentElement) {
          const c = rgb(getComputedStyle(e).backgroundColor);
          if (c.length === 3 || (c.length === 4 && c[3] === 1)) return c.slice(0, 3);
        }
        return [255, 255, 255];
      };
      const bad = [];
      for (const el of document.querySelectorAll('body *')) {
        if (el.closest('.bar') || el.closest('[hidden]') || !el.offsetParent) continue;
        const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
        if (!own) continue;
        const st = getComputedStyle(el);
        const fg = rgb(st.color).slice(0, 3);
        const [a, b] = [lum(fg), lum(background(el))];
        const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
        const size = parseFloat(st.fontSize);
        const large = size >= 24 || (size >= 18.66 && Number(st.fontWeight) >= 700);
        if (ratio < (large ? 3 : 4.5)) bad.push(`${el.tagName}.${el.className} "${el.textContent.trim().slice(0, 30)}" ${ratio.toFixed(2)}`);
      }
      return bad;
    });
    check(lowContrast.length === 0, `text below WCAG AA contrast: ${lowContrast.slice(0, 5).join(' | ')}`);

    // ---- screenshots ----
    step = 'screenshots';
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: SHOT, fullPage: true });
    for (const w of [1400, 1920]) {
      await page.setViewportSize({ width: w, height: 1000 });
      const rows = await page.evaluate(() => [...document.querySelectorAll('#live article')].map((a) =>
        new Set([...a.querySelectorAll('.steps li')].map((li) => li.offsetTop)).size));
      check(rows.length > 0 && rows.every((n) => n === 1), `at ${w} px the live steps fit one row (${rows})`);
      const over = await page.evaluate(() => [...document.querySelectorAll('.table-wrap')]
        .filter((t) => t.scrollWidth > t.clientWidth + 1 && t.closest('#instances')).length);
      eq(over, 0, `at ${w} px the instances table fits`);
      await page.screenshot({ path: SHOT.replace(/\.png$/, '') + `-${w}.png`, fullPage: true });
    }
    await page.setViewportSize({ width: 390, height: 844 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(overflow <= 1, `a narrow window does not scroll sideways (overflow ${overflow}px)`);
    await page.screenshot({ path: SHOT.replace(/\.png$/, '') + '-narrow.png', fullPage: false });
    await page.setViewportSize({ width: 1280, height: 900 });

    // ---- keyboard reach: Tab gets to the sign-out button ----
    step = 'keyboard';
    await page.locator('#main').focus();
    let reached = false;
    for (let i = 0; i < 200 && !reached; i++) {
      await page.keyboard.press('Shift+Tab');
      reached = await page.evaluate(() => document.activeElement?.id === 'signout');
    }
    check(reached, 'Sign out is reachable with the keyboard');

    // ---- sign out ----
    step = 'sign-out';
    await page.keyboard.press('Enter');
    await page.locator('#signin').waitFor({ state: 'visible', timeout: T });
    check(!(await ctx.cookies()).some((c) => c.name === 'dumont_session' && c.value), 'the cookie is cleared');
    const after = await ctx.request.get(BASE + '/api/standby/failover/report');
    eq(after.status(), 401, 'the API refuses the old session');
    const reuse = await fetch(BASE + '/api/standby/failover/report', {
      headers: { Cookie: `dumont_session=${cookie.value}` },
    });
    eq(reuse.status, 401, 'the signed-out session id is dead on the server too');

    step = 'console';
    check(errors.length === 0, `no console errors; got: ${errors.join(' | ')}`);
    await ctx.close();
  } finally {
    await browser.close();
  }
}

main().then(() => log('ok')).catch((e) => {
  log(`FAIL: ${e.message}`);
  process.exit(1);
});
