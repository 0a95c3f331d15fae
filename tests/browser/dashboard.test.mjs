// The dashboard in a real browser: Debian's Chromium, headless, driven by Playwright
// (playwright-core: no browser of its own is downloaded). tests/tests/dashboard.rs starts the
// servers and runs this file; run alone, it needs:
//
//   RUQI_URL         a `ruqi serve` without tokens, with the shell-bridge and echo plugins, a
//                    broken.wasm in its plugins folder, the jobs nightly-report and ping-api,
//                    and the paused job sleeper (a script that runs until it is killed)
//   RUQI_TOKEN_URL   a `ruqi serve --tokens $RUQI_TOKEN` holding the job `guarded`
//   RUQI_TOKEN       that token
//   RUQI_SCREENSHOTS folder for the screenshots (default target/browser)
//   RUQI_CHROMIUM    the browser (default /usr/bin/chromium)
//
// Every step prints `ok - <step> (<ms> ms)`; the first failure prints the error, saves
// failure.png and exits 1.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const base = process.env.RUQI_URL;
const tokenUrl = process.env.RUQI_TOKEN_URL;
const secret = process.env.RUQI_TOKEN;
const shots = process.env.RUQI_SCREENSHOTS || 'target/browser';
const executablePath = process.env.RUQI_CHROMIUM || '/usr/bin/chromium';
if (!base || !tokenUrl || !secret) {
  console.error('set RUQI_URL, RUQI_TOKEN_URL and RUQI_TOKEN (tests/tests/dashboard.rs does)');
  process.exit(2);
}
mkdirSync(shots, { recursive: true });

const JOB = 'browser-demo';
const started = Date.now();
const pageErrors = [];
let page;

async function step(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
  } catch (e) {
    e.message = `${name}: ${e.message}`;
    throw e;
  }
  console.log(`ok - ${name} (${Date.now() - t0} ms)`);
}

function watch(p) {
  p.on('pageerror', (e) => pageErrors.push(`${p.url()}: ${e.message}`));
  p.on('console', (m) => {
    // A refused call logs its HTTP status: the 401s of the token flow, and the 400 of a server
    // without the scheduler_nodes route. Those are expected.
    if (m.type() === 'error' && !/status of 40[013]/.test(m.text())) pageErrors.push(`${p.url()}: ${m.text()}`);
  });
}

async function shot(name) {
  // No toast over the picture.
  await page.evaluate(() => document.getElementById('toast').classList.remove('show'));
  await page.waitForTimeout(250);
  await page.screenshot({ path: join(shots, `${name}.png`) });
}

/** Clicks `button` until `locator` is there (the scheduler runs on its own time). */
async function refreshUntil(locator, button, ms = 20000) {
  const deadline = Date.now() + ms;
  while ((await locator.count()) === 0) {
    assert.ok(Date.now() < deadline, `still missing after ${ms} ms: ${locator}`);
    await page.waitForTimeout(400);
    await button.click();
    await page.waitForLoadState();
  }
}

const browser = await chromium.launch({
  executablePath,
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});
console.log(`# ${browser.version()} via playwright-core, launched in ${Date.now() - started} ms`);

try {
  const context = await browser.newContext({ locale: 'en-US', viewport: { width: 1280, height: 800 } });
  page = await context.newPage();
  watch(page);

  await step('the page loads from the binary on its overview and lists the jobs', async () => {
    await page.goto(`${base}/`);
    await page.locator('#overview .cards').waitFor();
    assert.equal(await page.locator('#nav a.active').textContent(), 'Overview');
    assert.equal(new URL(page.url()).hash, '#/overview');
    await page.click('#nav a[data-route="jobs"]');
    await page.locator('#jobs-table tr[data-job-id="nightly-report"]').waitFor();
    assert.equal(await page.locator('#nav a.active').textContent(), 'Jobs');
    const missing = await page.evaluate(async () => (await import('/ui/i18n.js')).missing());
    assert.deepEqual(missing, [], 'every string in both languages');
  });

  await step('the form shows a refused rule with the server’s reason', async () => {
    await page.click('#nav a[data-route="add"]');
    await page.fill('input[name="job_id"]', JOB);
    await page.check('input[name="job_trigger"][value="cron"]');
    await page.fill('input[name="rule"]', '61 * * * * *');
    const check = page.locator('#rule-check.refused');
    await check.waitFor();
    const text = await check.textContent();
    assert.match(text, /Rule refused \(ERR\)/);
    assert.match(text, /Job_rule not match: second: 61 is out of range 0-59/);
  });

  await step('a time zone is checked by the server and moves the fire times', async () => {
    await page.fill('input[name="rule"]', '0 0 9 * * *');
    await page.locator('#rule-check.accepted').waitFor();
    await page.fill('input[name="timezone"]', 'Mars/Olympus_Mons');
    const refused = page.locator('#rule-check.refused');
    await refused.waitFor();
    assert.match(await refused.textContent(), /Mars\/Olympus_Mons/);
    await page.fill('input[name="timezone"]', 'America/New_York');
    await page.locator('#rule-check.accepted').waitFor();
    assert.match(await page.locator('#rule-check .fire-times li').first().textContent(), / 09:00:00$/);
    await page.fill('input[name="timezone"]', '');
    // a calendar: an unknown one is refused with the loaded ones named; a known one is offered
    await page.locator('#rule-check.accepted').waitFor();
    await page.fill('input[name="calendar"]', 'us');
    const noCalendar = page.locator('#rule-check.refused');
    await noCalendar.waitFor();
    assert.match(await noCalendar.textContent(), /calendar "us" is not loaded \(calendars: cn\)/);
    assert.deepEqual(await page.locator('#calendar-names option').evaluateAll((os) => os.map((o) => o.value)), ['cn', 'cn:rest']);
    await page.fill('input[name="calendar"]', 'cn:rest');
    await page.locator('#rule-check.accepted').waitFor();
    await page.fill('input[name="calendar"]', '');
    await page.fill('input[name="rule"]', '');
    // the next step waits for a fresh verdict, not this one
    await page.locator('#rule-check:not(.accepted):not(.refused)').waitFor();
  });

  await step('the form shows the next 5 fire times before saving', async () => {
    await page.check('input[name="job_trigger"][value="interval"]');
    await page.fill('input[name="rule"]', '2s');
    await page.locator('#rule-check.accepted').waitFor();
    assert.equal(await page.locator('#rule-check .fire-times li').count(), 5);
    assert.equal(await page.locator('#rule-check code').textContent(), '2s');
    await page.fill('input[name="job_name"]', 'demo');
    await page.fill('input[name="cmd"]', 'bash scripts/hello.sh');
    await shot('add-job');
  });

  await step('a cmd the plugin refuses is not saved, with the reason', async () => {
    await page.fill('input[name="cmd"]', 'bash scripts/nope.sh');
    await page.click('button[type="submit"]');
    const refused = page.locator('#save-error .error');
    await refused.waitFor();
    assert.match(await refused.textContent(), /Not saved — ERR.*Cmd does not meet expectations/s);
    await page.fill('input[name="cmd"]', 'bash scripts/hello.sh');
  });

  await step('saving adds the job', async () => {
    await page.click('button[type="submit"]');
    await page.waitForURL(/#\/jobs$/);
    const row = page.locator(`#jobs-table tr[data-job-id="${JOB}"]`);
    await row.waitFor();
    assert.equal(await row.locator('[data-col="state"]').textContent(), 'scheduled');
    assert.equal(await row.locator('[data-col="rule"]').textContent(), '2s');
    await shot('jobs');
  });

  await step('the job runs: its history row appears and opens its whole output', async () => {
    await page.locator(`#jobs-table tr[data-job-id="${JOB}"] [data-action="history"]`).click();
    await page.waitForURL(new RegExp(`#/history\\?job=${JOB}$`));
    assert.equal(await page.inputValue('input[name="job"]'), JOB);
    const runs = page.locator(`#history-table tr[data-job-id="${JOB}"]`);
    await refreshUntil(runs, page.locator('[data-action="refresh"]'));
    // the time cell: the row's run id is a link to the run's page
    await runs.first().locator('td').first().click();
    const dialog = page.locator('#output-dialog[open]');
    await dialog.waitFor();
    assert.match(await page.locator('#output-text').textContent(), /hello from RuQi at /);
    assert.match(await page.locator('#output-meta').textContent(), /bash scripts\/hello\.sh/);
    await shot('history');
    await page.click('#output-close');
    await dialog.waitFor({ state: 'detached' });
  });

  await step('pause, resume, edit and remove the job', async () => {
    await page.click('#nav a[data-route="jobs"]');
    const row = page.locator(`#jobs-table tr[data-job-id="${JOB}"]`);
    const state = row.locator('[data-col="state"]');
    await row.locator('[data-action="pause"]').click();
    await page.locator(`#jobs-table tr[data-job-id="${JOB}"] [data-action="resume"]`).waitFor();
    assert.equal(await state.textContent(), 'paused');
    await row.locator('[data-action="resume"]').click();
    await page.locator(`#jobs-table tr[data-job-id="${JOB}"] [data-action="pause"]`).waitFor();
    assert.equal(await state.textContent(), 'scheduled');

    await row.locator('[data-action="edit"]').click();
    await page.waitForURL(new RegExp(`#/edit\\?job_id=${JOB}$`));
    await page.locator('#rule-check.accepted').waitFor();
    assert.equal(await page.inputValue('input[name="job_id"]'), JOB);
    assert.ok(await page.locator('input[name="job_id"]').getAttribute('readonly') !== null);
    assert.equal(await page.inputValue('input[name="cmd"]'), 'bash scripts/hello.sh');
    await page.fill('input[name="rule"]', '3s');
    await page.locator('#rule-check.accepted code', { hasText: '3s' }).waitFor();
    await page.click('button[type="submit"]');
    await page.waitForURL(/#\/jobs$/);
    await page.locator(`#jobs-table tr[data-job-id="${JOB}"] [data-col="rule"]`, { hasText: '3s' }).waitFor();

    page.once('dialog', (d) => d.accept());
    await row.locator('[data-action="remove"]').click();
    await row.waitFor({ state: 'detached' });
    assert.equal(await page.locator('#jobs-table tr[data-job-id="nightly-report"]').count(), 1);
  });

  await step('Run now starts a run and its page shows the whole output', async () => {
    await page.click('#nav a[data-route="jobs"]');
    await page.locator('#jobs-table tr[data-job-id="nightly-report"] [data-action="run"]').click();
    await page.waitForURL(/#\/run\?run_id=[0-9a-f]{32}$/);
    assert.equal(await page.locator('#nav a.active').getAttribute('data-route'), 'runs');
    await page.locator('#run-detail[data-state="ended"]').waitFor();
    assert.match(await page.locator('#run-output').textContent(), /nightly report/);
    assert.equal(await page.locator('#run-meta dd[data-field="trigger"]').textContent(), 'manual');
    assert.equal(await page.locator('#run-state [data-outcome]').getAttribute('data-outcome'), 'success');
    assert.equal(await page.locator('#run-follow').getAttribute('data-state'), 'ended');
  });

  await step('a run in progress: followed live, a second Run now refused, killed from the runs page', async () => {
    await page.click('#nav a[data-route="jobs"]');
    const runNow = page.locator('#jobs-table tr[data-job-id="sleeper"] [data-action="run"]');
    await runNow.click();
    await page.waitForURL(/#\/run\?run_id=[0-9a-f]{32}$/);
    await page.locator('#run-detail[data-state="running"]').waitFor();
    await page.locator('#run-follow[data-state="live"]').waitFor();
    assert.equal(await page.locator('#run-state [data-state="running"]').count(), 1);
    await page.click('#nav a[data-route="jobs"]');
    await runNow.click();
    const refused = page.locator('#toast.show.bad');
    await refused.waitFor();
    assert.match(await refused.textContent(), /^ERR: a run of job sleeper is in progress/);
    await page.click('#nav a[data-route="runs"]');
    const row = page.locator('#running-table tr[data-job-id="sleeper"]');
    await row.waitFor();
    assert.match(await row.textContent(), /manual/);
    await shot('runs');
    let asked = '';
    page.once('dialog', (d) => {
      asked = d.message();
      d.accept();
    });
    await row.locator('[data-action="kill"]').click();
    assert.match(asked, /^Kill run [0-9a-f]{8} of sleeper\?/);
    // the page refreshes itself every 2 s
    await page.locator('#ended-table tr[data-job-id="sleeper"] [data-outcome="killed"]').waitFor();
    await page.locator('#runs-running .empty').waitFor();
  });

  await step('history shows how a run ended and links to its page', async () => {
    await page.goto(`${base}/#/history?job=sleeper`);
    const row = page.locator('#history-table tr[data-job-id="sleeper"]');
    await row.waitFor();
    assert.equal(await row.locator('[data-col="outcome"]').textContent(), 'killed');
    const runId = await row.getAttribute('data-run-id');
    await row.locator('[data-col="run"] a').click();
    await page.waitForURL(new RegExp(`#/run\\?run_id=${runId}$`));
    await page.locator('#run-detail[data-state="ended"]').waitFor();
    assert.match(await page.locator('#run-output').textContent(), /run killed \(run_kill\)/);
    assert.equal(await page.locator('#run-meta dd[data-field="kill_requested"]').textContent(), 'yes');
    await shot('run');
  });

  await step('the scheduler page shows this node and a nodes section', async () => {
    await page.click('#nav a[data-route="scheduler"]');
    const check = page.locator('#scheduler-status [data-field="check_time"] dd');
    await check.waitFor();
    assert.match(await check.textContent(), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
    // A lone node: a table of one (this node) where the server keeps a node list, else the note.
    await page.locator('#scheduler-nodes #nodes-table, #scheduler-nodes .empty').first().waitFor();
    await page.click('[data-action="wakeup"]');
    await page.locator('#toast.show').waitFor();
    await shot('scheduler');
  });

  await step('the plugins page shows prefixes, grants, limits and a file that failed', async () => {
    await page.click('#nav a[data-route="plugins"]');
    const shell = page.locator('#plugins-table tr[data-file="shell-bridge.wasm"]');
    await shell.waitFor();
    assert.match(await shell.textContent(), /loaded.*shell-bridge.*bash.*python.*programs=bash,python/s);
    assert.match(await page.locator('#plugins-table tr[data-file="template.wasm"]').textContent(), /echo:.*memory=8MiB/s);
    const broken = page.locator('#plugins-table tr[data-file="broken.wasm"]');
    await refreshUntil(broken, page.locator('[data-action="refresh"]'));
    assert.match(await broken.textContent(), /failed.*cannot load plugin/s);
    await shot('plugins');
  });

  await step('the overview charts the runs; a job\'s page shows its run strip', async () => {
    await page.click('#nav a[data-route="overview"]');
    await page.locator('#chart-minutes canvas').waitFor();
    await page.locator('#chart-hours canvas').waitFor();
    await page.locator('#chart-lateness canvas').waitFor();
    const runs = Number(await page.locator('[data-card="overview.runs.hour"] .card-value').textContent());
    assert.ok(runs >= 1, `runs in the last hour: ${runs}`);
    await page.locator('#slowest-table tr[data-job-id]').first().waitFor();
    await shot('overview');
    const job = await page.locator('#slowest-table tr[data-job-id]').first().getAttribute('data-job-id');
    await page.goto(`${base}/#/edit?job_id=${encodeURIComponent(job)}`);
    await page.locator('#run-strip .strip-bar').first().waitFor();
    assert.ok((await page.locator('#run-strip .strip-bar').count()) >= 1);
  });

  await step('the audit page lists the changes; a job\'s versions roll back', async () => {
    await page.click('#nav a[data-route="audit"]');
    await page.locator('#audit-table').waitFor();
    await page.fill('form.filters input[name="job_id"]', 'ping-api');
    await page.click('form.filters button[type="submit"]');
    const added = page.locator('#audit-table tr[data-job-id="ping-api"]', { hasText: 'job_add' });
    await added.waitFor();
    assert.match(await page.locator('#audit-table tr[data-job-id="ping-api"]', { hasText: 'job_modify' }).textContent(), /anonymous.*job_modify.*ping-api.*rule: "300s" → "600s"/s);
    await shot('audit');
    await added.locator('a', { hasText: 'ping-api' }).click();
    const first = page.locator('#versions-table tr[data-version="1"]');
    await first.waitFor();
    assert.match(await page.locator('#versions-table tr[data-version="2"]').textContent(), /current/);
    page.once('dialog', (d) => d.accept());
    await first.locator('[data-action="rollback"]').click();
    await page.locator('#versions-table tr[data-version="3"]', { hasText: 'current' }).waitFor();
    assert.match(await page.locator('#versions-table tr[data-version="3"]').textContent(), /"rule": "300s"/);
    await shot('versions');
    await page.click('#nav a[data-route="alerts"]');
    await page.locator('h1', { hasText: 'Alerts' }).waitFor();
    await page.locator('#alerts-table, main .empty').first().waitFor();
    await shot('alerts');
    await page.click('#nav a[data-route="plugins"]');
    await page.locator('#plugins-table').waitFor();
  });

  await step('the language switch shows Chinese and is remembered', async () => {
    await page.click('#lang-switch');
    await page.locator('#nav a[data-route="plugins"]', { hasText: '插件' }).waitFor();
    assert.equal(await page.locator('h1').textContent(), '插件');
    await page.reload();
    await page.locator('#plugins-table').waitFor();
    assert.equal(await page.locator('#nav a[data-route="jobs"]').textContent(), '任务');
    assert.equal(await page.getAttribute('html', 'lang'), 'zh-CN');
    assert.equal(await page.locator('#lang-switch').textContent(), 'English');
    await page.click('#nav a[data-route="jobs"]');
    await page.locator('#jobs-table').waitFor();
    await shot('jobs-zh');
  });
  await context.close();

  await step('with tokens on, the page asks for one and keeps it in this tab only', async () => {
    const ctx = await browser.newContext({ locale: 'zh-CN', viewport: { width: 1280, height: 800 } });
    page = await ctx.newPage();
    watch(page);
    await page.goto(`${tokenUrl}/#/jobs`);
    const dialog = page.locator('#token-dialog[open]');
    await dialog.waitFor();
    assert.equal(await page.locator('#token-title').textContent(), '此服务器需要令牌', 'follows navigator.language');
    await page.fill('#token-input', 'not-the-token');
    await page.click('#token-form button[type="submit"]');
    await page.locator('#token-error:not([hidden])').waitFor();
    assert.match(await page.locator('#token-error').textContent(), /invalid bearer token/);
    await page.fill('#token-input', secret);
    await page.click('#token-form button[type="submit"]');
    await page.locator('#jobs-table tr[data-job-id="guarded"]').waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem('ruqi.token')), secret);
    assert.ok(!(await page.evaluate(() => JSON.stringify(localStorage))).includes(secret), 'not in localStorage');
    await page.click('#nav a[data-route="plugins"]');
    await page.locator('#plugins-table').waitFor();
    assert.equal(await page.locator('#token-dialog[open]').count(), 0);
    await ctx.close();
  });

  assert.deepEqual(pageErrors, [], 'no script errors in the page');
  console.log(`# all steps passed in ${Date.now() - started} ms; screenshots in ${shots}`);
} catch (e) {
  process.exitCode = 1;
  console.log(`not ok - ${e?.message ?? e}`);
  console.error(e?.stack ?? e);
  if (pageErrors.length) console.error(`page errors:\n${pageErrors.join('\n')}`);
  await page?.screenshot({ path: join(shots, 'failure.png') }).catch(() => {});
} finally {
  await browser.close();
}
