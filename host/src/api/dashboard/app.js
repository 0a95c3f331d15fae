// The dashboard's shell: navigation, hash routing (#/overview, #/jobs, #/add, #/edit?job_id=…,
// #/runs?job=…, #/run?run_id=…, #/history?job=…, #/scheduler, #/plugins), the language
// switch and the token prompt.
// Each page is a function in pages.js that fills <main> and may return a cleanup.

import { call, onAuthNeeded, token } from './api.js';
import { fill, h, parseHash } from './dom.js';
import { lang, setLang, t } from './i18n.js';
import { PAGES } from './pages.js';

const main = document.getElementById('main');
let cleanup = null;
let generation = 0;

/** Fills the texts of the static shell (nav, buttons, dialog) in the current language. */
function renderShell() {
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  const sw = document.getElementById('lang-switch');
  sw.textContent = t('lang.switch');
  sw.title = t('lang.switch.title');
  const tok = document.getElementById('token-button');
  tok.hidden = !token.get();
  tok.title = t('token.button.title');
  document.title = `RuQi · ${t(`nav.${currentPage()}`, {})}`;
}

/** The nav entry of the page shown: a job's edit form is under "Add job", a run under "Runs". */
const NAV_OF = { edit: 'add', run: 'runs', versions: 'audit' };

function currentPage() {
  const { page } = parseHash(location.hash);
  return PAGES[page] ? NAV_OF[page] || page : 'overview';
}

/** Renders the page the hash names. */
async function route() {
  const { page, query } = parseHash(location.hash);
  const render = PAGES[page] || PAGES.overview;
  if (typeof cleanup === 'function') cleanup();
  cleanup = null;
  const mine = ++generation;
  for (const a of document.querySelectorAll('#nav a')) {
    a.classList.toggle('active', a.dataset.route === currentPage());
  }
  renderShell();
  fill(main, h('p', { class: 'muted' }, t('common.loading')));
  const done = await render(main, query, { current: () => mine === generation });
  if (mine === generation) cleanup = done;
  else if (typeof done === 'function') done();
}

/** Asks for a token in the dialog; resolves true when one was entered and accepted. */
function promptForToken(reason) {
  const dialog = document.getElementById('token-dialog');
  const input = document.getElementById('token-input');
  const error = document.getElementById('token-error');
  const form = document.getElementById('token-form');
  renderShell();
  error.textContent = token.get() ? t('token.wrong', { reason }) : '';
  error.hidden = !token.get();
  input.value = '';
  return new Promise((resolve) => {
    const finish = (ok) => {
      form.removeEventListener('submit', submit);
      dialog.removeEventListener('cancel', cancel);
      if (dialog.open) dialog.close();
      renderShell();
      resolve(ok);
    };
    const submit = (event) => {
      event.preventDefault();
      if (!input.value.trim()) return;
      token.set(input.value);
      finish(true);
    };
    const cancel = () => finish(false);
    form.addEventListener('submit', submit);
    dialog.addEventListener('cancel', cancel);
    dialog.showModal();
    input.focus();
  });
}

function start() {
  onAuthNeeded(promptForToken);
  document.getElementById('lang-switch').addEventListener('click', () => {
    setLang(lang() === 'zh' ? 'en' : 'zh');
    route();
  });
  document.getElementById('token-button').addEventListener('click', () => {
    token.clear();
    // Ask again at once: the next call gets a 401 and opens the prompt.
    call('scheduler_status').then(route, route);
  });
  document.getElementById('output-close').addEventListener('click', () => {
    document.getElementById('output-dialog').close();
  });
  window.addEventListener('hashchange', route);
  if (!location.hash) history.replaceState(null, '', '#/overview');
  route();
}

start();
