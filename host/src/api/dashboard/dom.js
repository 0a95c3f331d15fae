// Small DOM helpers: build elements without innerHTML (so text from the server is never
// read as markup), a toast, and reading a hash route.

/**
 * `h('a', {href: '#/x', class: 'btn'}, 'text', child)`: an element with attributes and children.
 * `on*` attributes given functions become listeners; null/false attributes and children (and null
 * `dataset` entries) are skipped.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') {
      for (const [dk, dv] of Object.entries(v)) if (dv !== null && dv !== undefined) el.dataset[dk] = String(dv);
    } else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces the children of `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let toastTimer = null;

/** Shows `text` for a few seconds at the bottom of the page. */
export function toast(text, kind = 'ok') {
  const el = document.getElementById('toast');
  el.textContent = text;
  el.className = `toast show ${kind}`;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (el.className = 'toast'), 3500);
}

/** `#/history?job=x` → { page: 'history', query: URLSearchParams }. */
export function parseHash(hash) {
  const raw = (hash || '').replace(/^#\/?/, '');
  const [page, qs] = raw.split('?');
  return { page: page || 'jobs', query: new URLSearchParams(qs || '') };
}

/** The hash of `page` with the non-empty entries of `params`. */
export function hashOf(page, params = {}) {
  const q = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== '' && v !== null && v !== undefined));
  return `#/${page}${q.size ? `?${q}` : ''}`;
}
