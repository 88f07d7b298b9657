// The broker connection: requests to the admin listener, the part of every
// poll all pages share (readiness, the broker's name, the history), and the
// header and banner that show whether the broker answers.

import { setText } from './dom.js';
import { fmtClock } from './format.js';
import { state } from './state.js';

export const POLL_MS = 2000;
const FETCH_TIMEOUT_MS = 5000;
const CONFIG_REFRESH_POLLS = 15; // the header's broker name; config rarely changes

export class HTTPError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

class NetError extends Error {}

// A failure that means the console lost the broker (as opposed to an
// answer such as 404 for a topic that was deleted).
export function isDisconnect(err) {
  return err instanceof NetError || (err instanceof HTTPError && err.status >= 500);
}

async function request(path) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), FETCH_TIMEOUT_MS);
  try {
    return await fetch(path, { signal: ctl.signal, cache: 'no-store' });
  } catch (e) {
    throw new NetError(e && e.name === 'AbortError' ? 'request timed out' : 'no answer');
  } finally {
    clearTimeout(timer);
  }
}

export async function getJSON(path) {
  const resp = await request(path);
  let body = null;
  try {
    body = await resp.json();
  } catch {
    body = null;
  }
  if (!resp.ok) {
    const msg = body && typeof body.error === 'string' ? body.error : `HTTP ${resp.status}`;
    throw new HTTPError(resp.status, msg);
  }
  if (body === null || typeof body !== 'object') throw new HTTPError(resp.status, 'not a JSON object');
  return body;
}

export async function getReady() {
  const resp = await request('/readyz');
  const text = (await resp.text()).trim();
  return { ok: resp.status === 200, text };
}

const ui = {
  banner: document.getElementById('banner'),
  bannerText: document.getElementById('banner-text'),
  brokerName: document.getElementById('broker-name'),
  readyDot: document.getElementById('ready-dot'),
  readyText: document.getElementById('ready-text'),
  updated: document.getElementById('updated'),
};

function configValue(name) {
  const e = (state.config || []).find((c) => c.name === name);
  return e ? e.value : '';
}

export function renderBrokerName() {
  if (!state.config) return;
  const node = configValue('node.id') || configValue('broker.id');
  const addr = configValue('advertised.listeners') || configValue('listeners');
  const name = [node ? `node ${node}` : '', addr].filter(Boolean).join(' · ');
  setText(ui.brokerName, name);
  document.title = name ? `Sluice · ${name}` : 'Sluice console';
}

function renderReady(r) {
  ui.readyDot.className = 'ready-dot ' + (r.ok ? 'ok' : 'bad');
  setText(ui.readyText, r.ok ? 'ready' : 'not ready');
  ui.readyText.title = r.text;
}

export function setConnected(ok, err) {
  if (ok) {
    state.lastOK = Date.now();
    ui.banner.hidden = true;
    setText(ui.updated, 'updated ' + fmtClock(state.lastOK));
    return;
  }
  const since = state.lastOK ? ` The figures shown are from ${fmtClock(state.lastOK)}.` : '';
  setText(ui.bannerText, `The admin listener at ${location.host} did not answer (${err.message}). Retrying every ${POLL_MS / 1000} s.${since}`);
  ui.banner.hidden = false;
  ui.readyDot.className = 'ready-dot bad';
  setText(ui.readyText, 'disconnected');
}

// pollCommon fetches what every page shows (readiness, the broker's name)
// and the history the charts need.
export async function pollCommon(view) {
  const jobs = [getReady().then(renderReady)];
  if (!state.config || state.polls % CONFIG_REFRESH_POLLS === 0) {
    jobs.push(getJSON('/api/config').then((c) => {
      state.config = Array.isArray(c.config) ? c.config : [];
      renderBrokerName();
    }));
  }
  if (view.wantsHistory) {
    jobs.push(getJSON('/api/history').then(
      (h) => { state.history = Array.isArray(h.times_ms) ? h : null; },
      (e) => {
        // A broker without history still serves everything else.
        if (isDisconnect(e)) throw e;
        state.history = null;
      }));
  }
  const results = await Promise.allSettled(jobs);
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
}

// setConnectedIfStale clears the banner after an on-demand request
// succeeded while the poller still thought the broker was gone.
export function setConnectedIfStale() {
  if (!ui.banner.hidden) setConnected(true);
}
