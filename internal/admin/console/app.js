// Sluice console: one page over the admin listener's read-only JSON API.
//
// Routes live in the hash (#/topics, #/topics/{name}, #/groups,
// #/groups/{id}, #/broker). A view builds its DOM once when its route is
// entered; every poll (2 s) only updates what changed, in place, so scroll
// position, text selection and the record browser's inputs survive.
//
// Everything that comes from the API reaches the page through textContent,
// text nodes or setAttribute: no HTML string is ever parsed. The server's
// Content-Security-Policy forbids inline script and style as a second line.
//
// This file is the entry point and router; the pages and helpers are ES
// modules next to it, loaded by the browser through these imports (no
// build step): api.js (requests, the shared poll, the header and banner),
// state.js, dom.js, format.js, charts.js, and one module per page.

import { POLL_MS, isDisconnect, pollCommon, setConnected } from './api.js';
import { el, notice, pageTitle } from './dom.js';
import { state } from './state.js';
import { topicsView } from './topics.js';
import { topicView } from './topic.js';
import { groupsView } from './groups.js';
import { groupView } from './group.js';
import { brokerView } from './broker.js';

const viewRoot = document.getElementById('view');

// Views, here and in the page modules, each return {el, nav, wantsHistory,
// poll()}; poll fetches and updates in place and throws what it could not
// handle.

function notFoundView(hash) {
  return {
    nav: '',
    wantsHistory: false,
    el: el('div', null, pageTitle(null, 'Not found', 'page-title'),
      notice(`There is no page "${hash}". Try Topics, Consumer groups or Broker above.`, 'not-found')),
    async poll() {},
  };
}

// ---------------------------------------------------------------------------
// Routing and the poll loop

function route() {
  const hash = location.hash.replace(/^#\/?/, '');
  const [head, ...rest] = hash.split('/');
  let arg = null;
  if (rest.length && rest.join('/') !== '') {
    try {
      arg = decodeURIComponent(rest.join('/'));
    } catch {
      return notFoundView(hash);
    }
  }
  switch (head) {
    case '':
    case 'topics':
      return arg === null ? topicsView() : topicView(arg);
    case 'groups':
      return arg === null ? groupsView() : groupView(arg);
    case 'broker':
      return arg === null ? brokerView() : notFoundView(hash);
    default:
      return notFoundView(hash);
  }
}

let current = null;
let timer = 0;
let inflight = false;
let again = false;

async function tick() {
  clearTimeout(timer);
  if (inflight) {
    again = true;
    return;
  }
  inflight = true;
  const view = current;
  try {
    await pollCommon(view);
    await view.poll();
    state.polls++;
    setConnected(true);
  } catch (e) {
    if (isDisconnect(e)) setConnected(false, e);
    else {
      console.error('sluice console:', e);
      setConnected(true);
    }
  } finally {
    inflight = false;
    if (again) {
      again = false;
      tick();
    } else {
      timer = setTimeout(tick, POLL_MS);
    }
  }
}

function enter() {
  current = route();
  viewRoot.replaceChildren(current.el);
  for (const a of document.querySelectorAll('.nav a')) a.classList.toggle('active', a.dataset.route === current.nav);
  window.scrollTo(0, 0);
  tick();
}

window.addEventListener('hashchange', enter);
if (!location.hash) history.replaceState(null, '', '#/topics');
enter();
