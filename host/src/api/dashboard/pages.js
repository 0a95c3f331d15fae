// The dashboard's pages. Each one is `render(main, query, view)`: it fills `main` from the
// API and may return a cleanup (a timer to stop); `view.current()` turns false once the user
// has moved on, so a late answer does not draw over the next page.

import { ApiError, call } from './api.js';
import { fill, h, hashOf, toast } from './dom.js';
import { t } from './i18n.js';
import { AROUND_PAGES } from './around.js';
import { OVERVIEW_PAGES, runStrip } from './overview.js';

const PAGE_SIZE = 15;

/** An error box for a failed call: RuQi's stat and reason, or the network failure. */
function errorBox(e) {
  if (e instanceof ApiError) {
    return h('div', { class: 'error', role: 'alert' }, h('strong', {}, t('common.error', { stat: e.stat })), e.reason ? h('pre', {}, e.reason) : null);
  }
  return h('div', { class: 'error', role: 'alert' }, t('common.network', { message: e.message || String(e) }));
}

function head(title, ...actions) {
  return h('div', { class: 'page-head' }, h('h1', {}, title), h('div', { class: 'actions' }, actions));
}

function refreshButton(onclick) {
  return h('button', { type: 'button', class: 'btn', 'data-action': 'refresh', onclick }, t('common.refresh'));
}

/** A filter form whose fields come from `fields` ([name, label, hint, element?]) and the query. */
function filterForm(page, query, fields) {
  const form = h(
    'form',
    { class: 'filters', autocomplete: 'off' },
    fields.map(([name, label, hint, control]) =>
      h('label', {}, h('span', {}, label), control || h('input', { name, value: query.get(name) || '', placeholder: hint })),
    ),
    h('div', { class: 'filter-buttons' }, h('button', { class: 'btn', type: 'submit' }, t('common.filter')), h('a', { class: 'btn subtle', href: hashOf(page) }, t('common.clear'))),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const params = {};
    for (const [k, v] of new FormData(form)) params[k] = String(v).trim();
    location.hash = hashOf(page, params);
  });
  return form;
}

/** "1–15 of 72" and previous/next links. */
function pager(page, query, total) {
  const index = Math.max(1, Number(query.get('page')) || 1);
  const last = Math.max(1, Math.ceil(total / PAGE_SIZE));
  const link = (n, label) => {
    const params = Object.fromEntries(query);
    params.page = n > 1 ? n : '';
    return n < 1 || n > last ? h('span', { class: 'btn subtle disabled', 'aria-disabled': 'true' }, label) : h('a', { class: 'btn subtle', href: hashOf(page, params) }, label);
  };
  const from = total === 0 ? 0 : (index - 1) * PAGE_SIZE + 1;
  const to = Math.min(total, index * PAGE_SIZE);
  return h('div', { class: 'pager' }, h('span', { class: 'muted' }, t('common.range', { from, to, total })), link(index - 1, t('common.prev')), link(index + 1, t('common.next')));
}

function badge(text, kind) {
  return h('span', { class: `badge ${kind}` }, text);
}

// ---------------------------------------------------------------------------------- jobs

async function jobs(main, query, view) {
  const filters = { job_id: query.get('job_id') || '', job_name: query.get('job_name') || '' };
  const index = Math.max(1, Number(query.get('page')) || 1);
  const body = h('div', {}, h('p', { class: 'muted' }, t('common.loading')));
  const load = async () => {
    try {
      const data = await call('job_list', { ...filters, page_index: index, page_size: PAGE_SIZE });
      if (view.current()) fill(body, jobTable(data, filters, load), pager('jobs', query, data.total));
    } catch (e) {
      if (view.current()) fill(body, errorBox(e));
    }
  };
  fill(
    main,
    head(t('jobs.title'), refreshButton(load), h('a', { class: 'btn primary', href: '#/add' }, `+ ${t('nav.add')}`)),
    filterForm('jobs', query, [
      ['job_id', t('jobs.id'), t('jobs.id.hint')],
      ['job_name', t('jobs.name'), t('jobs.name.hint')],
    ]),
    body,
  );
  await load();
}

function jobTable(data, filters, reload) {
  if (!data.list.length) {
    return h('p', { class: 'empty' }, filters.job_id || filters.job_name ? t('jobs.empty.filtered') : t('jobs.empty'));
  }
  const act = async (route, job, done, button) => {
    button.disabled = true;
    try {
      await call(route, { job_id: job.job_id });
      toast(t(done, { id: job.job_id }));
    } catch (e) {
      toast(e.message, 'bad');
    }
    await reload();
  };
  const rows = data.list.map((job) => {
    const paused = job.next_run_time === null;
    const toggle = h('button', { type: 'button', class: 'btn small', 'data-action': paused ? 'resume' : 'pause' }, paused ? t('jobs.resume') : t('jobs.pause'));
    toggle.addEventListener('click', () => act(paused ? 'job_resume' : 'job_pause', job, paused ? 'jobs.done.resume' : 'jobs.done.pause', toggle));
    // Run now: a run of its own (a paused job too), then its page; or the server's reason.
    const runNow = h('button', { type: 'button', class: 'btn small', 'data-action': 'run', title: t('jobs.run.title') }, t('jobs.run'));
    runNow.addEventListener('click', async () => {
      runNow.disabled = true;
      try {
        const started = await call('job_run', { job_id: job.job_id });
        startedHere.add(started.run_id);
        toast(t('jobs.done.run', { id: job.job_id }));
        location.hash = runHref(started.run_id);
      } catch (e) {
        toast(e.message, 'bad');
        runNow.disabled = false;
      }
    });
    const remove = h('button', { type: 'button', class: 'btn small danger', 'data-action': 'remove' }, t('jobs.remove'));
    remove.addEventListener('click', () => {
      if (confirm(t('jobs.confirm.remove', { id: job.job_id }))) act('job_remove', job, 'jobs.done.remove', remove);
    });
    return h(
      'tr',
      { dataset: { jobId: job.job_id } },
      h('td', { class: 'mono strong' }, job.job_id),
      h('td', {}, job.job_name),
      h('td', {}, job.job_trigger),
      h('td', { class: 'mono', 'data-col': 'rule' }, job.rule, job.timezone ? h('span', { class: 'muted small zone', 'data-col': 'zone' }, ` ${job.timezone}`) : null),
      h('td', { class: 'nowrap' }, paused ? '—' : job.next_run_time),
      h('td', { class: 'mono cmd', title: job.cmd }, job.cmd),
      h('td', { class: 'nowrap', 'data-col': 'last' }, lastRun(job.job_id)),
      h('td', { 'data-col': 'state', title: job.paused_reason || '' }, job.paused_reason ? badge(t('jobs.breaker'), 'bad') : paused ? badge(t('jobs.paused'), 'muted') : badge(t('jobs.scheduled'), 'ok')),
      h(
        'td',
        {},
        h(
          'div',
          { class: 'row-actions' },
          toggle,
          runNow,
          h('a', { class: 'btn small', href: hashOf('edit', { job_id: job.job_id }), 'data-action': 'edit' }, t('jobs.edit')),
          h('a', { class: 'btn small', href: hashOf('history', { job: job.job_id }), 'data-action': 'history' }, t('jobs.history')),
          h('a', { class: 'btn small', href: hashOf('versions', { job_id: job.job_id }), 'data-action': 'versions' }, t('jobs.versions')),
          remove,
        ),
      ),
    );
  });
  const cols = ['jobs.id', 'jobs.name', 'jobs.trigger', 'jobs.rule', 'jobs.next', 'jobs.cmd', 'jobs.last', 'jobs.state', 'jobs.actions'];
  return h('div', { class: 'table-wrap' }, h('table', { class: 'grid', id: 'jobs-table' }, h('thead', {}, h('tr', {}, cols.map((c) => h('th', {}, t(c))))), h('tbody', {}, rows)));
}

/** A cell filled with the job's last run (its outcome and when it ended) once `job_strip` answers. */
function lastRun(jobId) {
  const cell = h('span', { class: 'muted' }, '…');
  call('job_strip', { job_id: jobId, count: 1 })
    .then((data) => {
      const run = data.list[0];
      if (!run) return fill(cell, '—');
      const when = h('span', { class: 'muted small', title: run.ended }, ` ${toSecond(run.ended)}`);
      return fill(cell, run.run_id ? h('a', { href: runHref(run.run_id), 'data-outcome': run.outcome }, outcomeBadge(run.outcome)) : outcomeBadge(run.outcome), when);
    })
    .catch(() => fill(cell, '—'));
  return cell;
}

// ------------------------------------------------------------------------ add / edit form

const EXAMPLES = {
  cron: ['*/5 * * * * *', '0 20 2 * * *', '0 30 9 * * mon-fri'],
  interval: ['10s', '5m', '1h'],
  date: ['now', '2030-12-16 18:03:17'],
};

async function jobForm(main, query, view, editing) {
  const id = query.get('job_id') || '';
  let job = { job_id: '', job_name: '', job_trigger: 'interval', rule: '', cmd: '' };
  if (editing) {
    try {
      job = await call('job_show', { job_id: id });
    } catch (e) {
      if (view.current()) fill(main, head(t('form.edit.title', { id })), errorBox(e));
      return;
    }
    if (!view.current()) return;
  }
  const field = (name, label, hint, control, ...more) => {
    control.id = `field-${name}`;
    return h('div', { class: 'field' }, h('label', { class: 'label', for: control.id }, label), control, hint ? h('small', { class: 'hint' }, hint) : null, more);
  };
  const idInput = h('input', { name: 'job_id', value: job.job_id, required: true, readonly: editing, autocomplete: 'off', spellcheck: 'false' });
  const nameInput = h('input', { name: 'job_name', value: job.job_name || '', autocomplete: 'off' });
  const ruleInput = h('input', { name: 'rule', value: job.rule, required: true, autocomplete: 'off', spellcheck: 'false', class: 'mono' });
  const cmdInput = h('input', { name: 'cmd', value: job.cmd, required: true, autocomplete: 'off', spellcheck: 'false', class: 'mono' });
  const tzInput = h('input', { name: 'timezone', value: job.timezone || '', autocomplete: 'off', spellcheck: 'false', placeholder: 'Asia/Shanghai', class: 'mono' });
  const zone = () => tzInput.value.trim() || undefined;
  const calList = h('datalist', { id: 'calendar-names' });
  const calInput = h('input', { name: 'calendar', value: job.calendar || '', autocomplete: 'off', spellcheck: 'false', placeholder: 'cn', class: 'mono', list: 'calendar-names' });
  // Empty means every day: when editing a job that had a calendar, that is `none` (removes it).
  const calendar = () => calInput.value.trim() || (editing && job.calendar ? 'none' : undefined);
  call('calendar_list', {})
    .then((data) => fill(calList, (data.list || []).filter((c) => c.status === 'loaded').flatMap((c) => [c.name, `${c.name}:rest`].map((v) => h('option', { value: v })))))
    .catch(() => {});
  const ruleHint = h('small', { class: 'hint' });
  const examples = h('div', { class: 'examples' });
  const triggers = h(
    'div',
    { class: 'segmented', role: 'radiogroup' },
    ['cron', 'interval', 'date'].map((kind) =>
      h(
        'label',
        { title: t(`form.trigger.${kind}.hint`) },
        h('input', { type: 'radio', name: 'job_trigger', value: kind, checked: job.job_trigger === kind }),
        h('span', {}, h('strong', {}, t(`form.trigger.${kind}`)), h('small', {}, t(`form.trigger.${kind}.hint`))),
      ),
    ),
  );
  const trigger = () => triggers.querySelector('input:checked')?.value || 'interval';
  const check = h('div', { class: 'check', id: 'rule-check', 'aria-live': 'polite' });
  const saveError = h('div', { id: 'save-error' });
  const save = h('button', { type: 'submit', class: 'btn primary' }, editing ? t('form.save.edit') : t('form.save.add'));

  const showExamples = () => {
    ruleHint.textContent = t(`form.rule.${trigger()}`);
    fill(
      examples,
      h('span', { class: 'muted' }, t('form.examples')),
      EXAMPLES[trigger()].map((ex) =>
        h(
          'button',
          {
            type: 'button',
            class: 'chip mono',
            onclick: () => {
              ruleInput.value = ex;
              liveCheck();
            },
          },
          ex,
        ),
      ),
    );
  };

  // The live check: the server's own parse of the trigger and rule, and its next 5 fire times.
  let seq = 0;
  let timer = null;
  const runCheck = async () => {
    const mine = ++seq;
    const rule = ruleInput.value;
    if (!rule.trim()) {
      fill(check, h('p', { class: 'muted' }, t('check.empty')));
      check.className = 'check';
      return;
    }
    check.classList.add('busy');
    try {
      const data = await call('job_next_fire_times', { job_trigger: trigger(), rule, count: 5, timezone: zone(), calendar: calendar() === 'none' ? undefined : calendar() });
      if (mine !== seq) return;
      check.className = 'check accepted';
      fill(
        check,
        h('p', { class: 'verdict' }, '✓ ', t('check.ok'), ' · ', t('check.normalised'), ' ', h('code', {}, data.rule)),
        data.list.length ? h('ol', { class: 'fire-times' }, data.list.map((time) => h('li', { class: 'mono' }, time))) : h('p', { class: 'muted' }, t('check.never')),
      );
    } catch (e) {
      if (mine !== seq) return;
      check.className = 'check refused';
      fill(check, h('p', { class: 'verdict' }, '✗ ', e instanceof ApiError ? t('check.refused', { stat: e.stat }) : t('common.network', { message: e.message })), e.reason ? h('pre', { class: 'reason' }, e.reason) : null);
    }
  };
  const liveCheck = () => {
    clearTimeout(timer);
    timer = setTimeout(runCheck, 250);
  };
  ruleInput.addEventListener('input', liveCheck);
  tzInput.addEventListener('input', liveCheck);
  calInput.addEventListener('input', liveCheck);
  triggers.addEventListener('change', () => {
    showExamples();
    liveCheck();
  });

  const form = h(
    'form',
    { class: 'job-form', autocomplete: 'off' },
    h(
      'div',
      { class: 'form-main' },
      h('div', { class: 'field-row' }, field('job_id', t('form.id'), editing ? null : t('form.id.hint'), idInput), field('job_name', t('form.name'), t('form.name.hint'), nameInput)),
      h('fieldset', { class: 'field' }, h('legend', { class: 'label' }, t('form.trigger')), triggers),
      field('rule', t('form.rule'), null, ruleInput, ruleHint, examples),
      field('timezone', t('form.timezone'), t('form.timezone.hint'), tzInput),
      field('calendar', t('form.calendar'), t('form.calendar.hint'), calInput, calList),
      field('cmd', t('form.cmd'), t('form.cmd.hint'), cmdInput),
      saveError,
      h('div', { class: 'form-buttons' }, save, h('a', { class: 'btn subtle', href: '#/jobs' }, t('common.cancel'))),
    ),
    h('aside', { class: 'form-side' }, h('h2', {}, t('check.title')), h('p', { class: 'hint' }, t('check.hint')), check),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    save.disabled = true;
    save.textContent = t('form.saving');
    fill(saveError);
    const params = {
      job_trigger: trigger(),
      job_id: idInput.value.trim(),
      job_name: nameInput.value.trim() || null,
      cmd: cmdInput.value,
      rule: ruleInput.value,
      timezone: zone(),
      calendar: calendar(),
    };
    try {
      await call(editing ? 'job_modify' : 'job_add', params);
      toast(t(editing ? 'form.done.edit' : 'form.done.add', { id: params.job_id }));
      location.hash = hashOf('jobs');
    } catch (e) {
      fill(saveError, e instanceof ApiError ? h('div', { class: 'error', role: 'alert' }, h('strong', {}, t('form.refused', { stat: e.stat })), e.reason ? h('pre', {}, e.reason) : null) : errorBox(e));
      save.disabled = false;
      save.textContent = editing ? t('form.save.edit') : t('form.save.add');
    }
  });
  fill(main, head(editing ? t('form.edit.title', { id }) : t('form.add.title')), form);
  if (editing) {
    const strip = await runStrip(id);
    if (view.current()) main.insertBefore(strip, form);
  }
  showExamples();
  runCheck();
  (editing ? ruleInput : idInput).focus();
  return () => clearTimeout(timer);
}

// ----------------------------------------------------------------------------------- runs

/** How many running runs the runs page lists (more are counted, not shown). */
const RUNNING_MAX = 100;
/**
 * Runs started from this page: job_run answers before the run is in the store (it starts on
 * its own, once a slot is free), so their page waits a little for them.
 */
const startedHere = new Set();
/** How long a run started here may take to show up, ms. */
const START_WAIT = 15000;
const OUTCOME_KINDS = { success: 'ok', failed: 'bad', timeout: 'bad', killed: 'warn', lost: 'muted' };

/** A word of the server's (a trigger, a state, an outcome) in the page's language, or as it came. */
function word(group, value) {
  const key = `${group}.${value}`;
  const text = t(key);
  return text === key ? String(value) : text;
}

/** How a run ended, as a badge (`data-outcome` keeps the server's word); a dash when unknown. */
function outcomeBadge(outcome) {
  if (!outcome) return '—';
  const el = badge(word('outcome', outcome), OUTCOME_KINDS[outcome] || 'muted');
  el.dataset.outcome = outcome;
  return el;
}

/** A run's state: running (stopping once a kill was asked), else how it ended. */
function runBadge(run) {
  if (run.state !== 'running') return run.outcome ? outcomeBadge(run.outcome) : badge(word('state', run.state), 'muted');
  const el = run.kill_requested ? badge(t('runs.stopping'), 'warn') : badge(word('state', 'running'), 'live');
  el.dataset.state = run.kill_requested ? 'stopping' : 'running';
  return el;
}

/** The first 8 characters of a run id (enough to tell runs apart on a page). */
function shortId(id) {
  return String(id).slice(0, 8);
}

function runHref(runId) {
  return hashOf('run', { run_id: runId });
}

/** A link to a run's page, or a dash (history rows older than runs have no run id). */
function runLink(runId) {
  if (!runId) return '—';
  return h('a', { class: 'mono', href: runHref(runId), title: runId, 'data-action': 'run', onclick: (e) => e.stopPropagation() }, shortId(runId));
}

/** `2026-01-02 03:04:05.678901` to the second (the whole time in a title). */
function toSecond(time) {
  return time ? String(time).replace(/\.\d+$/, '') : '—';
}

/** Seconds as `4.2 s`, `3 min 05 s` or `2 h 07 min`. */
function duration(seconds) {
  const s = Math.max(0, Number(seconds) || 0);
  if (s < 60) return t('duration.s', { n: s.toFixed(1) });
  const whole = Math.floor(s);
  const two = (n) => String(n).padStart(2, '0');
  if (whole < 3600) return t('duration.m', { m: Math.floor(whole / 60), s: two(whole % 60) });
  return t('duration.h', { h: Math.floor(whole / 3600), m: two(Math.floor(whole / 60) % 60) });
}

/** Asks, then asks the server to stop `run` (on whichever node runs it); true once it took the kill. */
async function killRun(run, button) {
  if (!confirm(t('runs.confirm.kill', { id: shortId(run.run_id), job: run.job_id }))) return false;
  button.disabled = true;
  try {
    await call('run_kill', { run_id: run.run_id });
    toast(t('runs.done.kill', { id: shortId(run.run_id) }));
    return true;
  } catch (e) {
    toast(e.message, 'bad');
    button.disabled = false;
    return false;
  }
}

/** A row that opens the run's page on a click, or Enter on the row itself. */
function runRow(run, ...cells) {
  const open = () => (location.hash = runHref(run.run_id));
  return h(
    'tr',
    {
      class: 'clickable',
      tabindex: '0',
      dataset: { runId: run.run_id, jobId: run.job_id },
      onclick: open,
      onkeydown: (e) => e.target === e.currentTarget && (e.key === 'Enter' || e.key === ' ') && (e.preventDefault(), open()),
    },
    h('td', {}, runLink(run.run_id)),
    h('td', { class: 'mono strong' }, run.job_id),
    h('td', {}, word('trigger', run.trigger), run.attempt > 1 ? h('span', { class: 'muted' }, ` #${run.attempt}`) : null),
    h('td', { class: 'mono small' }, run.node),
    h('td', { class: 'nowrap', title: run.started }, toSecond(run.started)),
    cells,
  );
}

function runGrid(id, cols, rows) {
  const numeric = new Set(['run.elapsed']);
  return h('div', { class: 'table-wrap' }, h('table', { class: 'grid', id }, h('thead', {}, h('tr', {}, cols.map((c) => h('th', { class: numeric.has(c) ? 'num' : null }, t(c))))), h('tbody', {}, rows)));
}

async function runs(main, query, view) {
  const job = query.get('job') || '';
  const index = Math.max(1, Number(query.get('page')) || 1);
  const running = h('div', {}, h('p', { class: 'muted' }, t('common.loading')));
  const ended = h('div', {});
  const count = h('span', { class: 'count', id: 'runs-running-count' });
  // What is drawn, so that a refresh that changes only the clocks redraws no row (and pulls no
  // button from under the pointer).
  let drawnRunning = null;
  let drawnEnded = null;
  let busy = false;
  let again = false;
  const load = async () => {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    try {
      const [live, waits, past] = await Promise.all([
        call('run_list', { job_id: job, state: 'running', page_index: 1, page_size: RUNNING_MAX }),
        call('run_list', { job_id: job, state: 'waiting', page_index: 1, page_size: RUNNING_MAX }),
        call('run_list', { job_id: job, state: 'ended', page_index: index, page_size: PAGE_SIZE }),
      ]);
      // Runs waiting for the run of their job (its overlap policy) are listed after the running ones.
      const now = { total: live.total + waits.total, list: [...live.list, ...waits.list] };
      if (!view.current()) return;
      count.textContent = now.total ? ` (${now.total})` : '';
      const key = JSON.stringify([now.total, now.list.map((r) => [r.run_id, r.kill_requested])]);
      if (key !== drawnRunning) {
        fill(running, runningTable(now, load));
        drawnRunning = key;
      } else {
        const byId = new Map(now.list.map((r) => [r.run_id, r]));
        for (const row of running.querySelectorAll('tr[data-run-id]')) {
          const cell = row.querySelector('[data-col="elapsed"]');
          if (cell && byId.has(row.dataset.runId)) cell.textContent = duration(byId.get(row.dataset.runId).elapsed);
        }
      }
      const pastKey = JSON.stringify(past);
      if (pastKey !== drawnEnded) {
        fill(ended, endedTable(past, Boolean(job)), past.total > PAGE_SIZE || index > 1 ? pager('runs', query, past.total) : null);
        drawnEnded = pastKey;
      }
    } catch (e) {
      if (view.current()) fill(running, errorBox(e));
      drawnRunning = null;
    } finally {
      busy = false;
    }
    if (again && view.current()) {
      again = false;
      await load();
    }
  };
  fill(
    main,
    head(t('runs.title'), refreshButton(load)),
    filterForm('runs', query, [['job', t('runs.job'), t('jobs.id.hint')]]),
    h('section', { class: 'panel', id: 'runs-running' }, h('h2', {}, t('runs.running'), count), h('p', { class: 'hint' }, t('runs.auto')), running),
    h('section', { class: 'panel', id: 'runs-ended' }, h('h2', {}, t('runs.ended')), ended),
  );
  await load();
  // Every 2 s while the page is shown (not while the tab is hidden).
  const timer = setInterval(() => document.hidden || load(), 2000);
  return () => clearInterval(timer);
}

function runningTable(data, reload) {
  if (!data.list.length) return h('p', { class: 'empty' }, t('runs.running.none'));
  const rows = data.list.map((run) => {
    const kill = h('button', { type: 'button', class: 'btn small danger', 'data-action': 'kill', disabled: run.kill_requested }, t('runs.kill'));
    kill.addEventListener('click', async (event) => {
      event.stopPropagation();
      if (await killRun(run, kill)) await reload();
    });
    return runRow(run, h('td', { class: 'num nowrap', 'data-col': 'elapsed' }, duration(run.elapsed)), h('td', { 'data-col': 'state' }, runBadge(run)), h('td', {}, kill));
  });
  const cols = ['runs.run', 'run.job_id', 'run.trigger', 'run.node', 'run.started', 'run.elapsed', 'run.state', 'runs.actions'];
  const more = data.total > data.list.length ? h('p', { class: 'hint' }, t('runs.running.more', { shown: data.list.length, total: data.total })) : null;
  return [runGrid('running-table', cols, rows), more];
}

function endedTable(data, filtered) {
  if (!data.list.length) return h('p', { class: 'empty' }, filtered ? t('runs.ended.none.filtered') : t('runs.ended.none'));
  const rows = data.list.map((run) =>
    runRow(
      run,
      h('td', { class: 'nowrap', title: run.ended }, toSecond(run.ended)),
      h('td', { class: 'num nowrap', 'data-col': 'elapsed' }, duration(run.elapsed)),
      h('td', { 'data-col': 'outcome' }, runBadge(run)),
    ),
  );
  const cols = ['runs.run', 'run.job_id', 'run.trigger', 'run.node', 'run.started', 'run.ended', 'run.elapsed', 'run.outcome'];
  return runGrid('ended-table', cols, rows);
}

/** The fields of a run's page, in order, and how each is shown. */
const RUN_FIELDS = {
  run_id: (v) => v,
  job_id: (v) => v,
  job_name: (v) => v,
  cmd: (v) => v,
  node: (v) => v,
  trigger: (v) => word('trigger', v),
  attempt: (v) => v,
  state: (v) => word('state', v),
  outcome: (v) => outcomeBadge(v),
  fire_time: (v) => v,
  started: (v) => v,
  ended: (v) => v,
  elapsed: (v) => (v < 60 ? t('history.seconds', { n: Number(v).toFixed(3) }) : [duration(v), h('span', { class: 'muted' }, ` (${t('history.seconds', { n: Number(v).toFixed(0) })})`)]),
  kill_requested: (v) => (v ? t('common.yes') : t('common.no')),
  output_bytes: (v) => v,
};

/** Most bytes one `run_output` answer carries; a full piece means more is waiting (read at once). */
const OUTPUT_PIECE = 1024 * 1024;

/**
 * One run: its fields and its whole output. While it runs, the output follows the live tail
 * (`run_output` from the last `next_offset`, about every second) until the run has ended and
 * nothing more comes; then its final fields are read once more.
 */
async function runPage(main, query, view) {
  const id = query.get('run_id') || '';
  const deadline = performance.now() + START_WAIT;
  let run;
  for (;;) {
    try {
      run = await call('run_show', { run_id: id });
      break;
    } catch (e) {
      if (!view.current()) return;
      const starting = startedHere.has(id) && e instanceof ApiError && /^no run with id/.test(e.reason) && performance.now() < deadline;
      fill(main, head(t('run.title', { id: shortId(id) })), starting ? h('p', { class: 'muted', id: 'run-starting' }, t('run.starting')) : errorBox(e));
      if (!starting) return;
      await new Promise((resolve) => setTimeout(resolve, 300));
      if (!view.current()) return;
    }
  }
  if (!view.current()) return;
  const page = h('div', { id: 'run-detail' });
  const state = h('span', { id: 'run-state' });
  const meta = h('dl', { class: 'meta two', id: 'run-meta' });
  const follow = h('span', { class: 'follow', id: 'run-follow', 'aria-live': 'polite' });
  const output = h('pre', { class: 'output tall', id: 'run-output', 'data-empty': t('run.output.none') });
  const kill = h('button', { type: 'button', class: 'btn danger', 'data-action': 'kill' }, t('runs.kill'));
  let timer = null;
  let stopped = false;
  // The elapsed time ticks on from the server's figure, by this page's clock (no clock skew).
  let since = { elapsed: run.elapsed, at: performance.now() };

  const field = (k) => meta.querySelector(`dd[data-field="${k}"]`);
  const draw = (r) => {
    run = r;
    since = { elapsed: r.elapsed, at: performance.now() };
    page.dataset.state = r.state;
    fill(state, runBadge(r));
    kill.hidden = r.state !== 'running' && r.state !== 'waiting';
    kill.disabled = Boolean(r.kill_requested);
    fill(
      meta,
      Object.entries(RUN_FIELDS).map(([k, show]) => [h('dt', {}, t(`run.${k}`)), h('dd', { class: 'mono', 'data-field': k }, r[k] === null || r[k] === undefined ? '—' : show(r[k]))]),
    );
  };
  const setFollow = (kind, text) => {
    follow.className = `follow ${kind}`;
    follow.dataset.state = kind;
    follow.textContent = text;
  };
  const append = (text) => {
    // Follow the tail unless the reader scrolled up.
    const atEnd = output.scrollTop + output.clientHeight >= output.scrollHeight - 24;
    output.append(text);
    if (atEnd) output.scrollTop = output.scrollHeight;
  };
  const finish = async () => {
    try {
      const last = await call('run_show', { run_id: id });
      if (stopped || !view.current()) return;
      draw(last);
      // The stored whole output is what counts, should the pieces read differ from it.
      if (output.textContent !== (last.output || '')) {
        output.textContent = last.output || '';
        output.scrollTop = output.scrollHeight;
      }
    } catch {
      if (stopped || !view.current()) return;
      draw({ ...run, state: 'ended' });
    }
    setFollow('ended', t('run.done'));
  };
  let offset = 0;
  const poll = async () => {
    timer = null;
    if (stopped || !view.current()) return;
    let delay = 1000;
    try {
      const d = await call('run_output', { run_id: id, offset });
      if (stopped || !view.current()) return;
      const moved = d.next_offset !== offset;
      if (d.output) append(d.output);
      offset = d.next_offset;
      if (d.state === 'ended' && !moved) {
        await finish();
        return;
      }
      const bytes = field('output_bytes');
      if (bytes) bytes.textContent = String(offset);
      const elapsed = field('elapsed');
      if (elapsed) fill(elapsed, RUN_FIELDS.elapsed(since.elapsed + (performance.now() - since.at) / 1000));
      setFollow('live', t('run.following'));
      // Ended (read what is left), or a full piece (more is waiting): at once.
      if (d.state === 'ended' || d.next_offset - d.offset >= OUTPUT_PIECE) delay = 0;
    } catch (e) {
      if (stopped || !view.current()) return;
      setFollow('bad', t('run.follow.error', { message: e.message || String(e) }));
      delay = 3000;
    }
    timer = setTimeout(poll, delay);
  };
  kill.addEventListener('click', async () => {
    if (!(await killRun(run, kill)) || stopped || !view.current()) return;
    if (page.dataset.state === 'running') draw({ ...run, kill_requested: true });
  });

  draw(run);
  fill(
    page,
    h('section', { class: 'panel' }, h('h2', {}, t('run.details')), meta),
    h('section', { class: 'panel' }, h('div', { class: 'output-head' }, h('h2', {}, t('run.output')), follow), output),
  );
  fill(
    main,
    head(
      [t('run.title', { id: shortId(id) }), ' ', state],
      kill,
      h('a', { class: 'btn', href: hashOf('runs', { job: run.job_id }), 'data-action': 'job-runs' }, t('run.job_runs')),
      h('a', { class: 'btn', href: hashOf('history', { job: run.job_id }), 'data-action': 'history' }, t('jobs.history')),
      h('a', { class: 'btn subtle', href: hashOf('runs'), 'data-action': 'back' }, t('run.back')),
    ),
    page,
  );
  if (run.state === 'running') {
    // The tail goes on from the bytes already shown; output that was not whole UTF-8 (a
    // character cut at the end, or binary) is read again from byte 0 instead.
    const shown = run.output || '';
    if (!shown.includes('\uFFFD')) {
      output.textContent = shown;
      output.scrollTop = output.scrollHeight;
      offset = new TextEncoder().encode(shown).length;
    }
    setFollow('live', t('run.following'));
    poll();
  } else {
    output.textContent = run.output || '';
    setFollow('ended', t('run.done'));
  }
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

// -------------------------------------------------------------------------------- history

async function historyPage(main, query, view) {
  const index = Math.max(1, Number(query.get('page')) || 1);
  const success = query.get('success') || '';
  const params = {
    job_id: query.get('job') || '',
    job_name: query.get('name') || '',
    is_success: success === 'ok' ? 'true' : success === 'failed' ? 'false' : '',
    scheduler_name: query.get('node') || '',
  };
  const filtered = Object.values(params).some(Boolean);
  const body = h('div', {}, h('p', { class: 'muted' }, t('common.loading')));
  const load = async () => {
    try {
      const data = await call('job_history_list', { ...params, page_index: index, page_size: PAGE_SIZE });
      if (view.current()) fill(body, historyTable(data, filtered), pager('history', query, data.total));
    } catch (e) {
      if (view.current()) fill(body, errorBox(e));
    }
  };
  const result = h(
    'select',
    { name: 'success' },
    [
      ['', 'history.result.any'],
      ['ok', 'history.result.ok'],
      ['failed', 'history.result.failed'],
    ].map(([v, k]) => h('option', { value: v, selected: v === success }, t(k))),
  );
  fill(
    main,
    head(t('history.title'), refreshButton(load)),
    filterForm('history', query, [
      ['job', t('history.job'), ''],
      ['name', t('history.name'), ''],
      ['success', t('history.result'), '', result],
      ['node', t('history.node'), t('history.node.hint')],
    ]),
    body,
  );
  await load();
}

function firstLine(text, max = 80) {
  const line = (text || '').split('\n').find((l) => l.trim()) || '';
  return line.length > max ? `${line.slice(0, max)}…` : line;
}

function historyTable(data, filtered) {
  if (!data.list.length) return h('p', { class: 'empty' }, filtered ? t('history.empty.filtered') : t('history.empty'));
  const rows = data.list.map((run) => {
    const open = () => showOutput(run);
    return h(
      'tr',
      {
        class: 'clickable',
        tabindex: '0',
        // history-id: the row's own id; run-id: the run it records (none on rows older than runs)
        dataset: { historyId: run.id, runId: run.run_id, jobId: run.job_id },
        onclick: open,
        onkeydown: (e) => e.target === e.currentTarget && (e.key === 'Enter' || e.key === ' ') && (e.preventDefault(), open()),
      },
      h('td', { class: 'nowrap' }, run.c_time),
      h('td', { class: 'mono strong' }, run.job_id),
      h('td', {}, run.job_name),
      h('td', {}, run.cmd_is_success ? badge(t('history.ok'), 'ok') : badge(t('history.failed'), 'bad')),
      h('td', { 'data-col': 'outcome' }, outcomeBadge(run.outcome)),
      h('td', { class: 'num' }, Number(run.cmd_cost).toFixed(3)),
      h('td', { class: 'mono small' }, run.scheduler_name),
      h('td', { 'data-col': 'run' }, runLink(run.run_id)),
      h('td', { class: 'mono output-preview' }, firstLine(run.cmd_output)),
    );
  });
  const cols = ['history.time', 'history.job', 'history.name', 'history.result', 'history.outcome', 'history.cost', 'history.node', 'history.run_id', 'history.output'];
  return h(
    'div',
    {},
    h('p', { class: 'hint' }, t('history.open')),
    h('div', { class: 'table-wrap' }, h('table', { class: 'grid', id: 'history-table' }, h('thead', {}, h('tr', {}, cols.map((c) => h('th', { class: c === 'history.cost' ? 'num' : null }, t(c))))), h('tbody', {}, rows))),
  );
}

function showOutput(run) {
  const dialog = document.getElementById('output-dialog');
  fill(document.getElementById('output-title'), t('history.run', { id: run.id }), ' · ', run.job_id, ' ', run.cmd_is_success ? badge(t('history.ok'), 'ok') : badge(t('history.failed'), 'bad'));
  const meta = [
    ['history.time', run.c_time],
    ['history.cost', t('history.seconds', { n: Number(run.cmd_cost).toFixed(6) })],
    ['history.node', run.scheduler_name],
    ['history.name', run.job_name],
    ['history.cmd', run.cmd],
    // The run's keys, on rows written since runs have them.
    ['run.outcome', run.outcome && outcomeBadge(run.outcome)],
    ['run.trigger', run.trigger && word('trigger', run.trigger)],
    ['run.attempt', run.attempt],
    ['run.fire_time', run.fire_time],
    ['run.started', run.started],
    ['run.ended', run.ended],
    ['run.run_id', run.run_id && h('a', { href: runHref(run.run_id), 'data-action': 'run', onclick: () => dialog.close() }, run.run_id)],
  ].filter(([, v]) => v !== null && v !== undefined);
  fill(document.getElementById('output-meta'), meta.map(([k, v]) => [h('dt', {}, t(k)), h('dd', { class: 'mono' }, v)]));
  document.getElementById('output-text').textContent = run.cmd_output || '';
  document.getElementById('output-close').textContent = t('common.close');
  dialog.showModal();
}

// ------------------------------------------------------------------------------ scheduler

const STATUS_FIELDS = ['check_time', 'next_wakeup_time', 'wait_seconds'];

async function scheduler(main, query, view) {
  const status = h('div', {}, h('p', { class: 'muted' }, t('common.loading')));
  const nodes = h('div', {});
  const load = async () => {
    try {
      const data = (await call('scheduler_status')) || {};
      if (!view.current()) return;
      fill(status, statusCard(data));
      fill(nodes, nodesTable(Array.isArray(data.nodes) ? data.nodes : await nodeList()));
    } catch (e) {
      if (view.current()) fill(status, errorBox(e));
    }
  };
  const wake = h('button', { type: 'button', class: 'btn', 'data-action': 'wakeup' }, t('scheduler.wakeup'));
  wake.addEventListener('click', async () => {
    try {
      await call('scheduler_wakeup');
      toast(t('scheduler.woken'));
    } catch (e) {
      toast(e.message, 'bad');
    }
    setTimeout(load, 300);
  });
  fill(
    main,
    head(t('scheduler.title'), refreshButton(load), wake),
    h('section', { class: 'panel', id: 'scheduler-status' }, h('h2', {}, t('scheduler.this')), status, h('p', { class: 'hint' }, t('scheduler.auto'))),
    h('section', { class: 'panel nodes', id: 'scheduler-nodes' }, h('h2', {}, t('scheduler.nodes')), h('p', { class: 'hint' }, t('scheduler.nodes.hint')), nodes),
  );
  await load();
  const timer = setInterval(load, 5000);
  return () => clearInterval(timer);
}

function show(value) {
  if (value === null || value === undefined) return '—';
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

function statusCard(data) {
  const known = STATUS_FIELDS.map((k) => {
    let v = data[k];
    if (k === 'check_time' && v == null) v = t('scheduler.never');
    if (k === 'next_wakeup_time' && v == null && data.check_time) v = t('scheduler.idle');
    return [t(`scheduler.${k}`), v, k];
  });
  // Whatever else the server reports (newer servers may add fields), as it comes.
  const extra = Object.keys(data)
    .filter((k) => !STATUS_FIELDS.includes(k) && k !== 'nodes')
    .map((k) => [k, data[k], k]);
  return h('dl', { class: 'stats' }, [...known, ...extra].map(([label, v, k]) => h('div', { class: 'stat', dataset: { field: k } }, h('dt', {}, label), h('dd', { class: 'mono' }, show(v)))));
}

/**
 * The nodes when the status answer has none: the `scheduler_nodes` route of servers that keep
 * a node list (`{total, list}`); null where there is no such route (RuQi's 400) or it fails.
 */
async function nodeList() {
  try {
    const data = await call('scheduler_nodes');
    return Array.isArray(data?.list) ? data.list : Array.isArray(data?.nodes) ? data.nodes : null;
  } catch {
    return null;
  }
}

const NODE_STATES = { up: 'ok', stopped: 'muted', silent: 'bad' };

/** Any list of node objects: one column per key, in the order the server gives them. */
function nodesTable(list) {
  if (!Array.isArray(list)) return h('p', { class: 'empty' }, t('scheduler.nodes.none'));
  const cols = [];
  for (const node of list) for (const k of Object.keys(node || {})) if (!cols.includes(k)) cols.push(k);
  const cell = (c, v) => (c === 'state' && NODE_STATES[v] ? badge(v, NODE_STATES[v]) : show(v));
  return h(
    'div',
    { class: 'table-wrap' },
    h('table', { class: 'grid', id: 'nodes-table' }, h('thead', {}, h('tr', {}, cols.map((c) => h('th', {}, c)))), h('tbody', {}, list.map((node) => h('tr', { class: node?.this ? 'this-node' : null }, cols.map((c) => h('td', { class: 'mono' }, cell(c, node?.[c]))))))),
  );
}

// -------------------------------------------------------------------------------- plugins

async function plugins(main, query, view) {
  const body = h('div', {}, h('p', { class: 'muted' }, t('common.loading')));
  const load = async () => {
    try {
      const data = await call('plugin_list');
      if (view.current()) fill(body, pluginTable(data.list));
    } catch (e) {
      if (view.current()) fill(body, errorBox(e));
    }
  };
  fill(main, head(t('plugins.title'), refreshButton(load)), h('p', { class: 'hint' }, t('plugins.hint')), body);
  await load();
}

function baseName(path) {
  return String(path).split(/[\\/]/).pop();
}

/** A load error: its first line, the rest (wasmtime's details) folded away. */
function errorText(error) {
  if (!error) return '';
  const [first, ...rest] = error.split('\n');
  return rest.length ? h('details', {}, h('summary', {}, first), h('pre', {}, rest.join('\n'))) : first;
}

function pluginTable(list) {
  if (!list.length) return h('p', { class: 'empty' }, t('plugins.empty'));
  const loaded = list.filter((p) => p.status === 'loaded').length;
  const rows = list.map((p) => {
    const ok = p.status === 'loaded';
    return h(
      'tr',
      { class: ok ? null : 'failed', dataset: { file: baseName(p.file) } },
      h('td', { class: 'mono file', title: p.file }, baseName(p.file)),
      h('td', {}, ok ? badge(t('plugins.loaded'), 'ok') : badge(t('plugins.failed'), 'bad')),
      h('td', {}, ok ? [h('strong', {}, p.name), ' ', h('span', { class: 'muted' }, p.version)] : '—'),
      h('td', {}, p.prefixes.length ? p.prefixes.map((x) => (x === '' ? h('code', { class: 'chip', title: t('plugins.prefix.any') }, '"" ', h('span', { class: 'muted' }, t('plugins.prefix.any'))) : h('code', { class: 'chip' }, x))) : '—'),
      h('td', { class: 'grants' }, p.grants ? p.grants.split(/\s+/).map((g) => h('code', { class: `chip${/=-$/.test(g) ? ' unset' : ''}` }, g)) : '—'),
      h('td', { class: 'mono small error-text' }, errorText(p.error)),
    );
  });
  const cols = ['plugins.file', 'plugins.status', 'plugins.plugin', 'plugins.prefixes', 'plugins.grants', 'plugins.error'];
  return h(
    'div',
    {},
    h('p', { class: 'summary' }, t('plugins.summary', { loaded, failed: list.length - loaded })),
    h('div', { class: 'table-wrap' }, h('table', { class: 'grid', id: 'plugins-table' }, h('thead', {}, h('tr', {}, cols.map((c) => h('th', {}, t(c))))), h('tbody', {}, rows))),
  );
}

/** The pages by the first segment of the hash. */
export const PAGES = {
  jobs,
  add: (main, query, view) => jobForm(main, query, view, false),
  edit: (main, query, view) => jobForm(main, query, view, true),
  runs,
  run: runPage,
  history: historyPage,
  scheduler,
  plugins,
  ...AROUND_PAGES,
  ...OVERVIEW_PAGES,
};
