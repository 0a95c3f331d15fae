// The dashboard's first page (#/overview): runs per minute over the last hour and per hour over
// the last 7 days by outcome, fire-time lateness p50/p99, the slowest and the most failing jobs,
// and the nodes — all from `stats_overview` (rollups kept with the runs, never history) and
// `scheduler_nodes`. Charts are drawn with uPlot (vendored: vendor/uPlot.esm.js, MIT). Also a
// job's run strip (its last 50 runs, coloured by outcome, height by duration), from `job_strip`.

import uPlot from './vendor/uPlot.esm.js';
import { ApiError, call } from './api.js';
import { fill, h, hashOf } from './dom.js';
import { t } from './i18n.js';

/** Outcomes in the order they are stacked, with their colours. */
const OUTCOMES = [
  ['success', '#2e9d5b'],
  ['failed', '#d64541'],
  ['timeout', '#e67e22'],
  ['killed', '#8e6bbf'],
  ['lost', '#7f8c8d'],
  ['missed', '#c9b037'],
];
const COLOUR = Object.fromEntries(OUTCOMES);

function errorBox(e) {
  const text = e instanceof ApiError ? `${e.stat}: ${e.reason}` : e.message || String(e);
  return h('div', { class: 'error', role: 'alert' }, text);
}

/** Every `step` seconds from `from` to `to`: the x axis, gaps filled with 0. */
function axis(buckets, step, count, now) {
  const last = now - (now % step);
  const xs = Array.from({ length: count }, (_, i) => last - (count - 1 - i) * step);
  const at = new Map(buckets.map((b) => [b.epoch, b]));
  return { xs, at };
}

/** A stacked bar chart of runs by outcome. */
function runsChart(el, buckets, step, count, now, width) {
  const { xs, at } = axis(buckets, step, count, now);
  const present = OUTCOMES.filter(([o]) => buckets.some((b) => (b.runs[o] || 0) > 0));
  const shown = present.length ? present : [OUTCOMES[0]];
  // Stacked: each series is the sum of itself and those under it; drawn from the top down.
  const cumulative = [];
  let below = xs.map(() => 0);
  for (const [o] of shown) {
    below = xs.map((x, i) => below[i] + ((at.get(x)?.runs[o]) || 0));
    cumulative.push(below);
  }
  const bars = uPlot.paths.bars({ size: [0.8, 40] });
  const opts = {
    width,
    height: 180,
    legend: { show: true },
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max)] } },
    axes: [{}, { size: 50 }],
    series: [{}, ...shown.map(([o, c]) => ({ label: t(`outcome.${o}`) === `outcome.${o}` ? o : t(`outcome.${o}`), stroke: c, fill: c, paths: bars, points: { show: false } }))],
  };
  // uPlot draws series in order: the tallest (all outcomes) first, so each lower one shows on top.
  const order = shown.map((_, i) => i).reverse();
  opts.series = [{}, ...order.map((i) => ({ ...opts.series[i + 1] }))];
  return new uPlot(opts, [xs, ...order.map((i) => cumulative[i])], el);
}

/** Fire-time lateness p50 and p99 (ms) per minute of the last hour (no point: no scheduled run). */
function latenessChart(el, buckets, now, width) {
  const { xs, at } = axis(buckets, 60, 60, now);
  const opts = {
    width,
    height: 160,
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true, range: () => [xs[0], xs[xs.length - 1]] }, y: { range: (u, min, max) => [0, Math.max(1, max || 1)] } },
    axes: [{}, { size: 70, values: (u, vals) => vals.map((v) => (v == null ? '' : `${v} ms`)) }],
    series: [
      {},
      { label: 'p50', stroke: '#2b6cb0', width: 2, spanGaps: true },
      { label: 'p99', stroke: '#d64541', width: 2, spanGaps: true },
    ],
  };
  const value = (x, key) => at.get(x)?.[key] ?? null;
  return new uPlot(opts, [xs, xs.map((x) => value(x, 'late_p50_ms')), xs.map((x) => value(x, 'late_p99_ms'))], el);
}

function jobTable(id, rows, cols) {
  if (!rows.length) return h('p', { class: 'empty' }, t('common.nothing'));
  return h(
    'table',
    { class: 'grid', id },
    h('thead', {}, h('tr', {}, cols.map(([label]) => h('th', {}, t(label))))),
    h('tbody', {}, rows.map((r) => h('tr', { dataset: { jobId: r.job_id } }, cols.map(([, cell]) => h('td', {}, cell(r)))))),
  );
}

const jobLink = (r) => h('a', { class: 'mono', href: hashOf('edit', { job_id: r.job_id }) }, r.job_id);

async function overview(main, query, view) {
  const body = h('div', { id: 'overview' }, h('p', { class: 'muted' }, t('common.loading')));
  const charts = [];
  const load = async () => {
    try {
      const [stats, nodes] = await Promise.all([call('stats_overview', {}), call('scheduler_nodes', {}).catch(() => ({ list: [] }))]);
      if (!view.current()) return;
      for (const c of charts.splice(0)) c.destroy();
      const now = Math.floor(Date.now() / 1000);
      const sum = (buckets, outcomes) => buckets.reduce((n, b) => n + outcomes.reduce((m, o) => m + (b.runs[o] || 0), 0), 0);
      const lastHour = stats.minutes;
      const all = OUTCOMES.map(([o]) => o);
      const cards = h(
        'div',
        { class: 'cards' },
        [
          ['overview.runs.hour', sum(lastHour, all)],
          ['overview.failed.hour', sum(lastHour, ['failed', 'timeout', 'killed', 'lost'])],
          ['overview.missed.hour', sum(lastHour, ['missed'])],
          ['overview.p99', lastHour.length && lastHour[lastHour.length - 1].late_p99_ms != null ? `${lastHour[lastHour.length - 1].late_p99_ms} ms` : '—'],
          ['overview.nodes', (nodes.list || []).filter((n) => n.state === 'up').length],
        ].map(([label, value]) => h('div', { class: 'card', dataset: { card: label } }, h('div', { class: 'card-value' }, String(value)), h('div', { class: 'card-label muted' }, t(label)))),
      );
      const minutes = h('div', { class: 'chart', id: 'chart-minutes' });
      const hours = h('div', { class: 'chart', id: 'chart-hours' });
      const late = h('div', { class: 'chart', id: 'chart-lateness' });
      fill(
        body,
        cards,
        h('section', {}, h('h2', {}, t('overview.minutes')), minutes),
        h('section', {}, h('h2', {}, t('overview.lateness')), late),
        h('section', {}, h('h2', {}, t('overview.hours')), hours),
        h(
          'div',
          { class: 'two-col' },
          h('section', {}, h('h2', {}, t('overview.slowest')), jobTable('slowest-table', stats.slowest, [['overview.job', jobLink], ['overview.avg', (r) => `${r.cost_avg.toFixed(3)} s`], ['overview.max', (r) => `${r.cost_max.toFixed(3)} s`], ['overview.runs', (r) => String(r.runs)]])),
          h('section', {}, h('h2', {}, t('overview.failing')), jobTable('failing-table', stats.failing, [['overview.job', jobLink], ['overview.failures', (r) => String(r.failures)], ['overview.runs', (r) => String(r.runs)]])),
        ),
        h('section', {}, h('h2', {}, t('overview.nodes')), jobTable('overview-nodes', (nodes.list || []).map((n) => ({ ...n, job_id: n.name })), [['overview.node', (n) => n.name], ['overview.state', (n) => n.state], ['overview.seen', (n) => n.seen || '—']])),
      );
      const width = Math.max(320, body.clientWidth - 8);
      charts.push(runsChart(minutes, stats.minutes, 60, 60, now, width));
      charts.push(latenessChart(late, stats.minutes, now, width));
      charts.push(runsChart(hours, stats.hours, 3600, 168, now, width));
    } catch (e) {
      if (view.current()) fill(body, errorBox(e));
    }
  };
  fill(main, h('div', { class: 'page-head' }, h('h1', {}, t('overview.title')), h('div', { class: 'actions' }, h('button', { type: 'button', class: 'btn', 'data-action': 'refresh', onclick: load }, t('common.refresh')))), body);
  await load();
  const timer = setInterval(load, 15000);
  return () => {
    clearInterval(timer);
    for (const c of charts.splice(0)) c.destroy();
  };
}

/** A job's run strip: its last `count` runs, oldest on the left, coloured by outcome, height by
 * duration (relative to the longest), each a link to its run. */
export async function runStrip(jobId, count = 50) {
  const el = h('div', { class: 'strip', id: 'run-strip', 'aria-label': t('strip.title') });
  try {
    const data = await call('job_strip', { job_id: jobId, count });
    const runs = data.list.slice().reverse();
    const longest = Math.max(0.001, ...runs.map((r) => r.cost));
    if (!runs.length) return h('p', { class: 'muted', id: 'run-strip' }, t('strip.none'));
    fill(
      el,
      runs.map((r) => {
        const height = Math.max(12, Math.round((r.cost / longest) * 100));
        const attrs = { class: 'strip-bar', title: `${r.ended} · ${r.outcome} · ${r.cost.toFixed(3)} s`, dataset: { outcome: r.outcome } };
        const bar = h('span', { class: 'strip-fill' });
        bar.style.height = `${height}%`;
        bar.style.background = COLOUR[r.outcome] || '#7f8c8d';
        return r.run_id ? h('a', { ...attrs, href: hashOf('run', { run_id: r.run_id }) }, bar) : h('span', attrs, bar);
      }),
    );
  } catch (e) {
    return errorBox(e);
  }
  return h('section', { class: 'strip-box' }, h('h2', {}, t('strip.title')), el);
}

export const OVERVIEW_PAGES = { overview };
