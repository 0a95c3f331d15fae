// The dashboard's pages around runs: alerts (#/alerts), the audit trail (#/audit) and a job's
// versions with rollback (#/versions?job_id=…). Same conventions as pages.js: each page is
// `render(main, query, view)` and reads the same /ruqi/ routes as the CLI.

import { ApiError, call } from './api.js';
import { fill, h, hashOf, toast } from './dom.js';
import { t } from './i18n.js';
import { runStrip } from './overview.js';

const PAGE_SIZE = 15;
const ALERT_KINDS = { pending: 'warn', sent: 'ok', failed: 'bad' };

function errorBox(e) {
  const text = e instanceof ApiError ? `${e.stat}: ${e.reason}` : e.message || String(e);
  return h('div', { class: 'error', role: 'alert' }, text);
}

function badge(text, kind) {
  return h('span', { class: `badge ${kind}` }, text);
}

function table(id, cols, rows) {
  return h('div', { class: 'table-wrap' }, h('table', { class: 'grid', id }, h('thead', {}, h('tr', {}, cols.map((c) => h('th', {}, t(c))))), h('tbody', {}, rows)));
}

/** A page of a listing route: filters from the query, previous/next links. */
async function listing(main, query, view, { page, route, title, filters, params, render }) {
  const index = Math.max(1, Number(query.get('page')) || 1);
  const body = h('div', {}, h('p', { class: 'muted' }, t('common.loading')));
  const form = h(
    'form',
    { class: 'filters', autocomplete: 'off' },
    filters.map(([name, label]) => h('label', {}, h('span', {}, t(label)), h('input', { name, value: query.get(name) || '' }))),
    h('div', { class: 'filter-buttons' }, h('button', { class: 'btn', type: 'submit' }, t('common.filter')), h('a', { class: 'btn subtle', href: hashOf(page) }, t('common.clear'))),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const p = {};
    for (const [k, v] of new FormData(form)) p[k] = String(v).trim();
    location.hash = hashOf(page, p);
  });
  const load = async () => {
    try {
      const data = await call(route, { ...params(query), page_index: index, page_size: PAGE_SIZE });
      if (!view.current()) return;
      const last = Math.max(1, Math.ceil(data.total / PAGE_SIZE));
      const link = (n, label) => {
        const p = Object.fromEntries(query);
        p.page = n > 1 ? n : '';
        return n < 1 || n > last ? h('span', { class: 'btn subtle disabled' }, label) : h('a', { class: 'btn subtle', href: hashOf(page, p) }, label);
      };
      const from = data.total === 0 ? 0 : (index - 1) * PAGE_SIZE + 1;
      const to = Math.min(data.total, index * PAGE_SIZE);
      fill(body, data.list.length ? render(data.list) : h('p', { class: 'empty' }, t('common.nothing')), h('div', { class: 'pager' }, h('span', { class: 'muted' }, t('common.range', { from, to, total: data.total })), link(index - 1, t('common.prev')), link(index + 1, t('common.next'))));
    } catch (e) {
      if (view.current()) fill(body, errorBox(e));
    }
  };
  fill(main, h('div', { class: 'page-head' }, h('h1', {}, t(title)), h('div', { class: 'actions' }, h('button', { type: 'button', class: 'btn', onclick: load }, t('common.refresh')))), form, body);
  await load();
}

async function alerts(main, query, view) {
  await listing(main, query, view, {
    page: 'alerts',
    route: 'alert_list',
    title: 'alerts.title',
    filters: [['job_id', 'alerts.job'], ['kind', 'alerts.kind'], ['state', 'alerts.state']],
    params: (q) => ({ job_id: q.get('job_id') || '', kind: q.get('kind') || '', state: q.get('state') || '' }),
    render: (list) =>
      table(
        'alerts-table',
        ['alerts.created', 'alerts.job', 'alerts.kind', 'alerts.target', 'alerts.state', 'alerts.attempts', 'alerts.sent', 'alerts.suppressed', 'alerts.answer'],
        list.map((a) =>
          h(
            'tr',
            { dataset: { alertId: a.id, jobId: a.job_id }, title: a.text },
            h('td', { class: 'nowrap' }, a.created),
            h('td', { class: 'mono strong' }, a.job_id),
            h('td', {}, a.kind),
            h('td', { class: 'mono cmd', title: a.target }, a.target),
            h('td', { 'data-col': 'state' }, badge(a.state, ALERT_KINDS[a.state] || 'muted')),
            h('td', { class: 'num' }, String(a.attempts)),
            h('td', { class: 'nowrap' }, a.sent || '—'),
            h('td', { class: 'num' }, String(a.suppressed)),
            h('td', { class: 'mono output-preview' }, (a.answer || '').split('\n')[0]),
          ),
        ),
      ),
  });
}

/** The fields a change touched, `field: before → after`. */
function changes(entry) {
  const after = entry.after || {};
  return Object.keys(after).map((k) => `${k}: ${JSON.stringify((entry.before || {})[k] ?? null)} → ${JSON.stringify(after[k])}`).join('\n');
}

async function audit(main, query, view) {
  await listing(main, query, view, {
    page: 'audit',
    route: 'audit_list',
    title: 'audit.title',
    filters: [['job_id', 'audit.job'], ['caller', 'audit.caller'], ['since', 'audit.since'], ['until', 'audit.until']],
    params: (q) => ({ job_id: q.get('job_id') || '', caller: q.get('caller') || '', since: q.get('since') || '', until: q.get('until') || '' }),
    render: (list) =>
      table(
        'audit-table',
        ['audit.at', 'audit.caller', 'audit.peer', 'audit.action', 'audit.job', 'audit.changes'],
        list.map((e) =>
          h(
            'tr',
            { dataset: { auditId: e.id, jobId: e.job_id || '' } },
            h('td', { class: 'nowrap' }, e.at),
            h('td', { class: 'strong' }, e.caller),
            h('td', { class: 'mono small' }, e.peer),
            h('td', { class: 'mono' }, e.action),
            h('td', { class: 'mono' }, e.job_id ? h('a', { href: hashOf('versions', { job_id: e.job_id }) }, e.job_id) : '—'),
            h('td', {}, h('pre', { class: 'changes' }, changes(e))),
          ),
        ),
      ),
  });
}

async function versions(main, query, view) {
  const jobId = query.get('job_id') || '';
  const body = h('div', {}, h('p', { class: 'muted' }, t('common.loading')));
  const load = async () => {
    try {
      const [data, job] = await Promise.all([call('job_versions', { job_id: jobId }), call('job_show', { job_id: jobId }).catch(() => null)]);
      if (!view.current()) return;
      const paused = job && job.paused_reason ? h('div', { class: 'error', role: 'status', id: 'paused-reason' }, `${t('versions.paused')}: ${job.paused_reason}`) : null;
      const rows = data.list.map((v) => {
        const back = h('button', { type: 'button', class: 'btn small', 'data-action': 'rollback', disabled: v.current }, t('versions.rollback'));
        back.addEventListener('click', async () => {
          if (!confirm(t('versions.confirm', { id: jobId, version: v.version }))) return;
          back.disabled = true;
          try {
            await call('job_rollback', { job_id: jobId, version: v.version });
            toast(t('versions.done', { id: jobId, version: v.version }));
          } catch (e) {
            toast(e.message, 'bad');
          }
          await load();
        });
        return h(
          'tr',
          { dataset: { version: v.version } },
          h('td', { class: 'num strong' }, String(v.version)),
          h('td', { class: 'nowrap' }, v.at),
          h('td', {}, v.caller),
          h('td', {}, v.current ? badge(t('versions.current'), 'ok') : ''),
          h('td', {}, h('pre', { class: 'changes' }, JSON.stringify(v.definition, null, 1))),
          h('td', {}, back),
        );
      });
      const strip = await runStrip(jobId);
      if (!view.current()) return;
      fill(body, paused, strip, table('versions-table', ['versions.version', 'versions.at', 'versions.caller', 'versions.state', 'versions.definition', 'jobs.actions'], rows));
    } catch (e) {
      if (view.current()) fill(body, errorBox(e));
    }
  };
  fill(main, h('div', { class: 'page-head' }, h('h1', {}, t('versions.title', { id: jobId })), h('div', { class: 'actions' }, h('a', { class: 'btn', href: hashOf('audit', { job_id: jobId }) }, t('nav.audit')))), body);
  await load();
}

/** The pages around runs, by the first segment of the hash. */
export const AROUND_PAGES = { alerts, audit, versions };
