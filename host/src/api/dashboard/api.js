// The RuQi API as the dashboard calls it: the same /ruqi/<route> as any client, reads as
// GET with a query string, everything else as POST with a JSON body. An answer is OK when
// its envelope says `stat: "OK"`; otherwise the reason is in the `x-reason` header, one
// line with Python-style escapes (decoded here for display).
//
// With tokens on, a 401 asks the page for a token (see onAuthNeeded) and the call is tried
// again; the token lives in sessionStorage only, so it goes away with the tab.

const TOKEN_KEY = 'ruqi.token';

/** The bearer token of this tab. */
export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY) || '',
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value.trim()),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

/** A refused call: RuQi's `stat`, its reason and the HTTP status. */
export class ApiError extends Error {
  constructor(route, stat, reason, status) {
    super(reason ? `${stat}: ${reason}` : stat);
    this.route = route;
    this.stat = stat;
    this.reason = reason;
    this.status = status;
  }
}

/** Undoes the escapes RuQi uses to keep `x-reason` one ASCII line (`\n`, `\xNN`, `\uNNNN`). */
export function readReason(raw) {
  return (raw || '').replace(/\\(U[0-9a-fA-F]{8}|u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|[nrt])/g, (_, e) => {
    if (e === 'n') return '\n';
    if (e === 'r') return '\r';
    if (e === 't') return '\t';
    return String.fromCodePoint(parseInt(e.slice(1), 16));
  });
}

let askForToken = null;
let pending = null;

/** Registers what to do on a 401: an async function resolving to true once a new token is set. */
export function onAuthNeeded(handler) {
  askForToken = handler;
}

/** One prompt at a time, however many calls were refused together. */
function ask(reason) {
  if (!pending) pending = askForToken(reason).finally(() => (pending = null));
  return pending;
}

/** Routes read with GET (a read-only token may call them). */
const READS = new Set([
  'job_list',
  'job_show',
  'job_history_list',
  'scheduler_status',
  'scheduler_nodes',
  'plugin_list',
  'run_list',
  'run_show',
  'run_output',
]);

/**
 * Calls `/ruqi/<route>` with `params` (undefined and '' left out; null kept in a JSON body,
 * where RuQi reads it as "use the default"). Resolves to `data` (or null), throws ApiError.
 */
export async function call(route, params = {}) {
  const given = Object.entries(params).filter(([, v]) => v !== undefined && v !== '');
  for (;;) {
    const headers = {};
    const bearer = token.get();
    if (bearer) headers.Authorization = `Bearer ${bearer}`;
    let url = `/ruqi/${route}`;
    const init = { headers, cache: 'no-store' };
    if (READS.has(route)) {
      const query = new URLSearchParams(given.filter(([, v]) => v !== null).map(([k, v]) => [k, String(v)]));
      if (query.size) url += `?${query}`;
    } else {
      init.method = 'POST';
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(Object.fromEntries(given));
    }
    const resp = await fetch(url, init);
    const reason = readReason(resp.headers.get('x-reason'));
    let body = null;
    try {
      body = await resp.json();
    } catch {
      body = null;
    }
    const stat = body?.stat ?? `HTTP ${resp.status}`;
    if (stat === 'OK') return body.data ?? null;
    if (resp.status === 401 && askForToken && (await ask(reason))) continue;
    throw new ApiError(route, stat, reason, resp.status);
  }
}
