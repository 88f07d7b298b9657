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

const POLL_MS = 2000;
const FETCH_TIMEOUT_MS = 5000;
// The topics list shows records per topic, which only the per-topic
// endpoint has. Fetch at most this many topics per poll, round-robin, so a
// broker with thousands of topics sees a bounded request rate.
const TOPIC_DETAILS_PER_POLL = 50;
const TOPIC_DETAIL_CONCURRENCY = 4;
const CONFIG_REFRESH_POLLS = 15; // the header's broker name; config rarely changes
const RECORDS_LIMIT_DEFAULT = 20;
const RECORDS_LIMIT_MAX = 200;
const SVG_NS = 'http://www.w3.org/2000/svg';

// ---------------------------------------------------------------------------
// DOM helpers

// el builds an element. props: class, text, testid, on<event>, boolean
// properties (checked, disabled), anything else as an attribute. Children
// that are not Nodes become text nodes.
function el(tag, props, ...children) {
  const e = document.createElement(tag);
  applyProps(e, props);
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function svg(tag, attrs) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'text') e.textContent = v;
    else if (k === 'testid') e.setAttribute('data-testid', v);
    else e.setAttribute(k, String(v));
  }
  return e;
}

function applyProps(e, props) {
  if (!props) return;
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k === 'testid') e.dataset.testid = v;
    else if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v);
    else if (typeof v === 'boolean') e[k] = v;
    else e.setAttribute(k, String(v));
  }
}

// setText changes a node's text only when it differs: rewriting the same
// text would drop the user's selection on every poll.
function setText(node, text) {
  const s = String(text);
  if (node.textContent !== s) node.textContent = s;
}

function setLink(td, href, text, testid) {
  let a = td.querySelector('a');
  if (!a) {
    a = el('a', { testid });
    td.prepend(a);
  }
  if (a.getAttribute('href') !== href) a.setAttribute('href', href);
  setText(a, text);
  return a;
}

function badge(text, kind, testid) {
  return el('span', { class: 'badge' + (kind ? ' ' + kind : ''), testid }, text);
}

function setBadge(td, text, kind) {
  let b = td.querySelector('.badge');
  if (!b) {
    b = badge('', kind);
    td.append(b);
  }
  b.className = 'badge' + (kind ? ' ' + kind : '');
  setText(b, text);
}

// Table keeps one <tr> per key, reusing rows across polls.
// columns: {title, num, cls, testid, text(item) | render(td, item)}.
class Table {
  constructor({ testid, columns, key, empty }) {
    this.columns = columns;
    this.key = key;
    this.empty = empty || 'Nothing here';
    this.tbody = el('tbody');
    this.el = el('table', { testid },
      el('thead', null, el('tr', null, columns.map((c) => el('th', { class: c.num ? 'num' : c.cls }, c.title)))),
      this.tbody);
  }

  update(items, rowClass) {
    const old = new Map();
    for (const tr of [...this.tbody.children]) {
      if (tr.dataset.key !== undefined) old.set(tr.dataset.key, tr);
      else tr.remove();
    }
    let prev = null;
    for (const item of items) {
      const k = String(this.key(item));
      let tr = old.get(k);
      if (tr) {
        old.delete(k);
      } else {
        tr = el('tr');
        tr.dataset.key = k;
        for (const c of this.columns) {
          tr.append(el('td', { class: [c.num ? 'num' : '', c.cls || ''].join(' ').trim() || null, testid: c.testid }));
        }
      }
      if (rowClass) tr.className = rowClass(item) || '';
      this.columns.forEach((c, i) => {
        const td = tr.children[i];
        if (c.render) c.render(td, item);
        else setText(td, c.text(item));
      });
      const want = prev ? prev.nextSibling : this.tbody.firstChild;
      if (want !== tr) this.tbody.insertBefore(tr, want);
      prev = tr;
    }
    for (const tr of old.values()) tr.remove();
    if (items.length === 0) {
      this.tbody.append(el('tr', null, el('td', { class: 'empty', colspan: this.columns.length }, this.empty)));
    }
  }
}

function panel(title, testid, ...body) {
  const head = el('div', { class: 'panel-head' }, el('h2', null, title));
  return { el: el('section', { class: 'panel', testid }, head, ...body), head };
}

// card is a labelled figure; text cards (state, protocol) use a smaller
// face so a long assignor name does not wrap into three lines.
function card(label, testid, text) {
  const value = el('div', { class: 'card-value' + (text ? ' text' : ''), testid }, '—');
  const sub = el('div', { class: 'card-sub', testid: testid + '-sub' });
  return { el: el('div', { class: 'card' }, el('div', { class: 'card-label' }, label), value, sub), value, sub };
}

// ---------------------------------------------------------------------------
// Formatting

const intFmt = new Intl.NumberFormat('en-US');

function fmtInt(n) {
  return typeof n === 'number' && Number.isFinite(n) ? intFmt.format(n) : '—';
}

function fmtBytes(n) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '—';
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

function fmtRate(r) {
  if (typeof r !== 'number' || !Number.isFinite(r)) return '—';
  if (r === 0) return '0 rec/s';
  if (r < 10) return `${r.toFixed(1)} rec/s`;
  if (r < 1000) return `${Math.round(r)} rec/s`;
  if (r < 1e6) return `${(r / 1e3).toFixed(1)}k rec/s`;
  return `${(r / 1e6).toFixed(1)}M rec/s`;
}

function fmtSpan(ms) {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 ? `${m} min ${s % 60} s` : `${m} min`;
  const h = Math.floor(m / 60);
  return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
}

function fmtClock(ms) {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? '—' : d.toTimeString().slice(0, 8);
}

function fmtTimestamp(ms) {
  if (typeof ms !== 'number' || ms < 0) return 'none';
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? String(ms) : d.toISOString();
}

function enc(s) {
  return encodeURIComponent(s);
}

// ---------------------------------------------------------------------------
// Bytes: base64 from the API, shown as text when printable UTF-8, else hex.

const strictUTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
// Control characters (but tab, newline, carriage return), DEL, C1 controls,
// line/paragraph separators and non-characters make a value binary.
const unprintable = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u2028\u2029\ufffe\uffff]/;

function b64ToBytes(b64) {
  let bin;
  try {
    bin = atob(b64);
  } catch {
    return null;
  }
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

// printableText returns the bytes as a string if they are printable
// UTF-8, else null. A value the server cut at its size limit may end in
// the middle of a character: up to 3 trailing bytes are forgiven then.
function printableText(bytes, cut) {
  for (let trim = 0; trim <= (cut ? 3 : 0) && trim <= bytes.length; trim++) {
    let s;
    try {
      s = strictUTF8.decode(bytes.subarray(0, bytes.length - trim));
    } catch {
      continue;
    }
    return unprintable.test(s) ? null : s;
  }
  return null;
}

function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(' ');
}

// bytesView renders one key, value or header value. size is the original
// length (-1 for null) when the API reports it.
function bytesView(b64, size, forceHex) {
  if (b64 === null || b64 === undefined) return [el('span', { class: 'null', 'data-format': 'null' }, 'null')];
  const bytes = b64ToBytes(b64);
  if (bytes === null) return [el('span', { class: 'null' }, 'undecodable')];
  if (bytes.length === 0) return [el('span', { class: 'null', 'data-format': 'empty' }, 'empty')];
  const cut = typeof size === 'number' && size > bytes.length;
  const text = forceHex ? null : printableText(bytes, cut);
  const format = text === null ? 'hex' : 'text';
  const pre = el('pre', { class: 'bytes ' + format, 'data-format': format }, text === null ? toHex(bytes) : text);
  const meta = [fmtBytes(typeof size === 'number' && size >= 0 ? size : bytes.length), format];
  if (cut) meta.push(`first ${fmtBytes(bytes.length)} shown`);
  return [pre, el('span', { class: 'kind' }, meta.join(' · '))];
}

// ---------------------------------------------------------------------------
// Charts: inline SVG, drawn by hand.

// pathFor turns values (null = no sample) into an SVG path with a gap at
// every null, so a topic that did not exist is not drawn as zero.
function pathFor(values, x, y) {
  let d = '';
  let pen = false;
  values.forEach((v, i) => {
    if (v === null || v === undefined || !Number.isFinite(v)) {
      pen = false;
      return;
    }
    d += `${pen ? 'L' : 'M'}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
    pen = true;
  });
  return d;
}

function drawnPoints(values) {
  return values.filter((v) => v !== null && v !== undefined && Number.isFinite(v)).length;
}

// sparkline is a small trend without axes: the shape matters, the number
// next to it gives the value.
function sparkline(values, testid) {
  const w = 120;
  const h = 28;
  const s = svg('svg', { class: 'spark', width: w, height: h, viewBox: `0 0 ${w} ${h}`, testid, role: 'img' });
  const n = values.length;
  if (drawnPoints(values) < 2) {
    s.append(svg('line', { class: 'grid', x1: 0, y1: h - 2, x2: w, y2: h - 2 }));
    return s;
  }
  const max = Math.max(1, ...values.filter((v) => v !== null));
  const x = (i) => (n === 1 ? w / 2 : 1 + (i * (w - 2)) / (n - 1));
  const y = (v) => h - 2 - (Math.max(0, v) / max) * (h - 5);
  s.append(svg('path', { class: 'line', d: pathFor(values, x, y) }));
  return s;
}

// niceCeil rounds up to 1, 2 or 5 times a power of ten, for an axis.
function niceCeil(v) {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

// lineChart draws values over times with a y axis from 0 (lag and rates
// start at nothing; a zoomed axis would exaggerate noise) and the first
// and last sample's clock time on the x axis.
function lineChart(values, times, { testid, lineTestid, unit, width }) {
  const W = Math.max(320, Math.round(width || 760));
  const H = 200;
  const L = 64;
  const R = 16;
  const T = 14;
  const B = 28;
  const s = svg('svg', { viewBox: `0 0 ${W} ${H}`, width: W, height: H, testid, role: 'img' });
  const n = values.length;
  const pts = values.filter((v) => v !== null && v !== undefined && Number.isFinite(v));
  s.append(svg('line', { class: 'axis', x1: L, y1: H - B, x2: W - R, y2: H - B }));
  s.append(svg('line', { class: 'axis', x1: L, y1: T, x2: L, y2: H - B }));
  if (pts.length === 0) {
    s.append(svg('text', { class: 'nodata', x: (L + W - R) / 2, y: H / 2, 'text-anchor': 'middle', text: 'no samples yet' }));
    return s;
  }
  const top = niceCeil(Math.max(...pts));
  const x = (i) => (n === 1 ? (L + W - R) / 2 : L + (i * (W - R - L)) / (n - 1));
  const y = (v) => H - B - (Math.max(0, v) / top) * (H - B - T);
  for (const frac of [0.5, 1]) {
    const gy = y(top * frac);
    s.append(svg('line', { class: 'grid', x1: L, y1: gy, x2: W - R, y2: gy }));
  }
  for (const v of [0, top / 2, top]) {
    s.append(svg('text', { class: 'label', x: L - 8, y: y(v) + 4, 'text-anchor': 'end', text: fmtInt(v) + (unit ? ' ' + unit : '') }));
  }
  s.append(svg('text', { class: 'label', x: L, y: H - 8, 'text-anchor': 'start', text: fmtClock(times[0]) }));
  s.append(svg('text', { class: 'label', x: W - R, y: H - 8, 'text-anchor': 'end', text: fmtClock(times[n - 1]) }));
  if (pts.length === 1) {
    const i = values.findIndex((v) => v !== null && v !== undefined);
    s.append(svg('circle', { class: 'dot', cx: x(i), cy: y(values[i]), r: 3 }));
    return s;
  }
  s.append(svg('path', { class: 'line', d: pathFor(values, x, y), testid: lineTestid }));
  return s;
}

// rates turns cumulative counts into per-second rates between samples; a
// drop (topic deleted and recreated) or a gap gives no rate.
function rates(cum, times) {
  const out = [];
  for (let i = 1; i < cum.length; i++) {
    const a = cum[i - 1];
    const b = cum[i];
    const dt = (times[i] - times[i - 1]) / 1000;
    out.push(a === null || b === null || b < a || !(dt > 0) ? null : (b - a) / dt);
  }
  return out;
}

function lastValue(values) {
  for (let i = values.length - 1; i >= 0; i--) if (values[i] !== null && values[i] !== undefined) return values[i];
  return null;
}

function topicRates(name) {
  const h = state.history;
  const t = h && h.topics && h.topics[name];
  if (!t || !Array.isArray(t.records)) return [];
  return rates(t.records, h.times_ms);
}

function groupLagSeries(id) {
  const h = state.history;
  const g = h && h.groups && h.groups[id];
  return g && Array.isArray(g.lag) ? g.lag : [];
}

// ---------------------------------------------------------------------------
// The API

class HTTPError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

class NetError extends Error {}

// A failure that means the console lost the broker (as opposed to an
// answer such as 404 for a topic that was deleted).
function isDisconnect(err) {
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

async function getJSON(path) {
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

async function getReady() {
  const resp = await request('/readyz');
  const text = (await resp.text()).trim();
  return { ok: resp.status === 200, text };
}

// mapLimited runs fn over items, at most limit at a time.
async function mapLimited(items, limit, fn) {
  const out = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

// ---------------------------------------------------------------------------
// Shared state and the header

const state = {
  history: null, // last /api/history, or null if the broker has none
  config: null, // last /api/config entries
  polls: 0,
  lastOK: 0,
  showInternal: false,
  hex: false,
};

const ui = {
  view: document.getElementById('view'),
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

function renderBrokerName() {
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

function setConnected(ok, err) {
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
async function pollCommon(view) {
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

// ---------------------------------------------------------------------------
// Views. Each returns {el, nav, wantsHistory, poll()}; poll fetches and
// updates in place and throws what it could not handle.

function pageTitle(crumbs, title, testid, ...extra) {
  return el('div', null,
    crumbs ? el('div', { class: 'crumbs' }, crumbs) : null,
    el('div', { class: 'title-row' }, el('h1', { testid }, title), ...extra));
}

function notice(text, testid) {
  return el('p', { class: 'empty', testid }, text);
}

function topicsView() {
  const records = new Map(); // topic -> records (sum of hw - log start)
  let cursor = 0; // round-robin position for the detail fetches
  const count = el('span', { class: 'subtitle', testid: 'topics-count' });
  const internal = el('input', { type: 'checkbox', testid: 'toggle-internal', checked: state.showInternal });
  const filter = el('input', { type: 'search', placeholder: 'Filter topics', testid: 'topics-filter', 'aria-label': 'Filter topics' });
  let last = [];
  const table = new Table({
    testid: 'topics-table',
    key: (t) => t.name,
    empty: 'No topics',
    columns: [
      { title: 'Topic', render: (td, t) => {
        setLink(td, '#/topics/' + enc(t.name), t.name, 'topic-link');
        if (t.internal && !td.querySelector('.badge')) td.append(' ', badge('internal'));
      } },
      { title: 'Partitions', num: true, text: (t) => fmtInt(t.partitions) },
      { title: 'Records', num: true, testid: 'topic-records', text: (t) => fmtInt(records.get(t.name)) },
      { title: 'Size', num: true, text: (t) => fmtBytes(t.size_bytes) },
      { title: 'Segments', num: true, text: (t) => fmtInt(t.segments) },
      { title: 'Throughput', cls: 'spark-cell', render: (td, t) => td.replaceChildren(sparkline(topicRates(t.name), 'topic-spark')) },
      { title: 'Rate', num: true, testid: 'topic-rate', text: (t) => fmtRate(lastValue(topicRates(t.name))) },
    ],
  });
  const shown = () => {
    const q = filter.value.trim().toLowerCase();
    return last.filter((t) => (state.showInternal || !t.internal) && (!q || t.name.toLowerCase().includes(q)));
  };
  const render = () => {
    const rows = shown();
    table.update(rows);
    const hidden = last.filter((t) => t.internal).length;
    setText(count, `${fmtInt(rows.length)} of ${fmtInt(last.length)} topics` + (!state.showInternal && hidden ? ` · ${hidden} internal hidden` : ''));
  };
  internal.addEventListener('change', () => {
    state.showInternal = internal.checked;
    render();
  });
  filter.addEventListener('input', render);
  const p = panel('All topics', 'topics-panel', el('div', { class: 'scroll-x' }, table.el));
  p.head.append(el('span', { class: 'spacer' }), filter,
    el('label', { class: 'field' }, internal, 'Show internal topics'));
  return {
    nav: 'topics',
    wantsHistory: true,
    el: el('div', null, pageTitle(null, 'Topics', 'page-title', count), p.el),
    async poll() {
      const data = await getJSON('/api/topics');
      last = Array.isArray(data.topics) ? data.topics : [];
      const names = new Set(last.map((t) => t.name));
      for (const k of records.keys()) if (!names.has(k)) records.delete(k);
      const rows = shown();
      const batch = [];
      for (let i = 0; i < Math.min(TOPIC_DETAILS_PER_POLL, rows.length); i++) batch.push(rows[(cursor + i) % rows.length]);
      cursor = rows.length ? (cursor + batch.length) % rows.length : 0;
      await mapLimited(batch, TOPIC_DETAIL_CONCURRENCY, async (t) => {
        try {
          const d = await getJSON('/api/topics/' + enc(t.name));
          records.set(t.name, topicRecords(d));
        } catch (e) {
          if (isDisconnect(e)) throw e; // deleted meanwhile: the next list drops it
        }
      });
      render();
    },
  };
}

function topicRecords(t) {
  let n = 0;
  for (const p of t.partitions || []) n += Math.max(0, p.high_watermark - p.log_start_offset);
  return n;
}

function topicView(name) {
  const cards = {
    partitions: card('Partitions', 'topic-partitions'),
    records: card('Records', 'topic-records-total'),
    size: card('Size', 'topic-size'),
    segments: card('Segments', 'topic-segments'),
    rate: card('Produce rate', 'topic-rate'),
  };
  const missing = notice('', 'topic-missing');
  missing.hidden = true;
  const idText = el('span', { class: 'subtitle', testid: 'topic-id' });
  const internalBadge = badge('internal', 'info');
  internalBadge.hidden = true;

  const parts = new Table({
    testid: 'partitions-table',
    key: (p) => p.partition,
    empty: 'No partitions',
    columns: [
      { title: 'Partition', num: true, text: (p) => String(p.partition) },
      { title: 'Log start', num: true, testid: 'log-start', text: (p) => fmtInt(p.log_start_offset) },
      { title: 'High watermark', num: true, testid: 'hw', text: (p) => fmtInt(p.high_watermark) },
      { title: 'Last stable', num: true, testid: 'lso', text: (p) => fmtInt(p.last_stable_offset) },
      { title: 'Records', num: true, text: (p) => fmtInt(Math.max(0, p.high_watermark - p.log_start_offset)) },
      { title: 'Size', num: true, text: (p) => fmtBytes(p.size_bytes) },
      { title: 'Segments', num: true, text: (p) => fmtInt(p.segments) },
      { title: '', render: (td, p) => {
        let b = td.querySelector('button');
        if (!b) {
          b = el('button', { type: 'button', testid: 'browse-partition' }, 'Browse');
          b.addEventListener('click', () => browser.show(Number(td.parentElement.dataset.key)));
          td.append(b);
        }
      } },
    ],
  });

  const configsCount = el('span', { class: 'subtitle', testid: 'configs-count' });
  const configsNote = notice('This broker does not report topic configs.', 'configs-missing');
  configsNote.hidden = true;
  const configs = new Table({
    testid: 'configs-table',
    key: (c) => c.name,
    empty: 'No configs',
    columns: [
      { title: 'Name', cls: 'mono', testid: 'config-name', text: (c) => c.name },
      { title: 'Value', cls: 'mono', testid: 'config-value', text: (c) => c.value },
      { title: 'Source', testid: 'config-source', render: (td, c) => {
        if (c.source === 'TOPIC_CONFIG') setBadge(td, 'override', 'warn');
        else {
          const b = td.querySelector('.badge');
          if (b) b.remove();
          setText(td, c.source);
        }
        td.title = c.source;
      } },
    ],
  });

  const browser = recordBrowser(name);
  const partsPanel = panel('Partitions', 'partitions-panel', el('div', { class: 'scroll-x' }, parts.el));
  const cfgPanel = panel('Configuration', 'configs-panel', configsNote, el('div', { class: 'scroll-x' }, configs.el));
  cfgPanel.head.append(configsCount);
  const body = el('div', null,
    el('div', { class: 'cards' }, Object.values(cards).map((c) => c.el)),
    partsPanel.el, browser.el, cfgPanel.el);

  return {
    nav: 'topics',
    wantsHistory: true,
    el: el('div', null,
      pageTitle(el('a', { href: '#/topics' }, 'Topics'), name, 'page-title', internalBadge, idText),
      missing, body),
    async poll() {
      let t;
      try {
        t = await getJSON('/api/topics/' + enc(name));
      } catch (e) {
        if (!(e instanceof HTTPError) || e.status !== 404) throw e;
        setText(missing, `Topic "${name}" does not exist (${e.message}).`);
        missing.hidden = false;
        body.hidden = true;
        return;
      }
      missing.hidden = true;
      body.hidden = false;
      internalBadge.hidden = !t.internal;
      setText(idText, t.id ? `id ${t.id}` : '');
      const ps = Array.isArray(t.partitions) ? t.partitions : [];
      setText(cards.partitions.value, fmtInt(ps.length));
      setText(cards.records.value, fmtInt(topicRecords(t)));
      setText(cards.size.value, fmtBytes(t.size_bytes));
      setText(cards.segments.value, fmtInt(t.segments));
      setText(cards.rate.value, fmtRate(lastValue(topicRates(name))));
      parts.update(ps);
      if (Array.isArray(t.configs)) {
        configsNote.hidden = true;
        configs.el.hidden = false;
        configs.update(t.configs, (c) => (c.source === 'TOPIC_CONFIG' ? 'override' : ''));
        const n = t.configs.filter((c) => c.source === 'TOPIC_CONFIG').length;
        setText(configsCount, `${fmtInt(t.configs.length)} keys · ${n} overridden`);
      } else {
        configsNote.hidden = false;
        configs.el.hidden = true;
      }
      await browser.poll(ps);
    },
  };
}

// recordBrowser reads /api/topics/{name}/records on demand: a Load click,
// Enter, paging, a partition change, or every poll while following the
// latest records. Its inputs are never rebuilt by a poll.
function recordBrowser(topic) {
  const partition = el('select', { testid: 'rb-partition', 'aria-label': 'Partition' });
  const offset = el('input', { type: 'text', class: 'narrow', placeholder: 'latest', testid: 'rb-offset', 'aria-label': 'Offset', inputmode: 'numeric' });
  const limit = el('input', { type: 'number', class: 'narrow', min: 1, max: RECORDS_LIMIT_MAX, value: RECORDS_LIMIT_DEFAULT, testid: 'rb-limit', 'aria-label': 'Limit' });
  const load = el('button', { type: 'button', class: 'primary', testid: 'rb-load' }, 'Load');
  const latest = el('button', { type: 'button', testid: 'rb-latest' }, 'Latest');
  const follow = el('input', { type: 'checkbox', testid: 'rb-follow' });
  const hex = el('input', { type: 'checkbox', testid: 'rb-hex', checked: state.hex });
  const older = el('button', { type: 'button', testid: 'rb-older', disabled: true }, '← Older');
  const newer = el('button', { type: 'button', testid: 'rb-newer', disabled: true }, 'Newer →');
  const info = el('div', { class: 'rb-info', testid: 'rb-info' }, 'Choose a partition and an offset, or leave the offset empty for the latest records.');

  let last = null; // last response
  let seq = 0; // discards answers to superseded requests
  let loadedOnce = false;
  let liveHW = null; // the shown partition's high watermark at the last poll

  const table = new Table({
    testid: 'records-table',
    key: (r) => r.offset,
    empty: 'No records',
    columns: [
      { title: 'Offset', num: true, testid: 'rec-offset', text: (r) => String(r.offset) },
      { title: 'Timestamp', cls: 'mono', testid: 'rec-ts', text: (r) => fmtTimestamp(r.timestamp_ms) },
      { title: 'Key', cls: 'rec-key', testid: 'rec-key', render: (td, r) => renderBytesCell(td, r, r.key, r.key_size) },
      { title: 'Value', cls: 'rec-value', testid: 'rec-value', render: (td, r) => {
        renderBytesCell(td, r, r.value, r.value_size);
        if (r.truncated) td.append(' ', badge('truncated', 'warn', 'rec-truncated'));
      } },
      { title: 'Headers', testid: 'rec-headers', render: (td, r) => {
        if (td.dataset.mode === modeKey()) return;
        td.dataset.mode = modeKey();
        const hs = Array.isArray(r.headers) ? r.headers : [];
        td.replaceChildren(...(hs.length === 0 ? [el('span', { class: 'null' }, 'none')] : hs.map((h) => el('div', { class: 'hdr', testid: 'rec-header' },
          el('span', { class: 'hdr-key', testid: 'rec-header-key' }, h.key), ': ',
          el('span', { testid: 'rec-header-value' }, ...bytesView(h.value, undefined, state.hex).slice(0, 1))))));
      } },
    ],
  });

  // A record at an offset never changes, so a cell is redrawn only when
  // the hex toggle flips: selection in a followed table survives.
  function modeKey() {
    return state.hex ? 'hex' : 'auto';
  }
  function renderBytesCell(td, r, b64, size) {
    if (td.dataset.mode === modeKey()) return;
    td.dataset.mode = modeKey();
    td.replaceChildren(...bytesView(b64, size, state.hex));
  }

  function isLatest() {
    const v = offset.value.trim().toLowerCase();
    return v === '' || v === 'latest';
  }

  function syncFollow() {
    follow.disabled = !isLatest();
    if (follow.disabled) follow.checked = false;
  }

  function limitValue() {
    const n = Math.floor(Number(limit.value));
    const v = Number.isFinite(n) ? Math.min(RECORDS_LIMIT_MAX, Math.max(1, n)) : RECORDS_LIMIT_DEFAULT;
    if (String(v) !== limit.value) limit.value = String(v);
    return v;
  }

  // An error stays up until the next successful load, polls or not.
  let errorShown = false;
  function setError(msg) {
    errorShown = true;
    info.className = 'rb-info error';
    setText(info, msg);
  }

  async function fetchRecords() {
    const v = offset.value.trim();
    let q = `partition=${enc(partition.value || '0')}&limit=${limitValue()}`;
    if (!isLatest()) {
      if (!/^\d+$/.test(v)) {
        setError('The offset must be a non-negative number, or empty for the latest records.');
        return;
      }
      q += `&offset=${v}`;
    }
    const my = ++seq;
    let r;
    try {
      r = await getJSON(`/api/topics/${enc(topic)}/records?${q}`);
    } catch (e) {
      if (my !== seq) return;
      if (isDisconnect(e)) throw e;
      setError(`Cannot read records: ${e.message}`);
      return;
    }
    if (my !== seq) return;
    last = r;
    errorShown = false;
    render();
  }

  function render() {
    if (!last) return;
    const recs = Array.isArray(last.records) ? last.records : [];
    table.update(recs);
    renderInfo();
  }

  // renderInfo also runs on every poll: the records stay as loaded, but
  // the partition grows, and "Newer" and the hint follow it.
  function renderInfo() {
    if (!last || errorShown) return;
    const recs = Array.isArray(last.records) ? last.records : [];
    info.className = 'rb-info';
    const where = `partition ${last.partition} · log start ${fmtInt(last.log_start_offset)} · high watermark ${fmtInt(last.high_watermark)}`;
    let msg = recs.length === 0 ? `No records here: ${where}`
      : `Offsets ${fmtInt(recs[0].offset)}–${fmtInt(recs[recs.length - 1].offset)} of ${where}`;
    const hw = liveHW !== null && String(last.partition) === partition.value ? Math.max(liveHW, last.high_watermark) : last.high_watermark;
    if (hw > last.high_watermark) msg += ` · ${fmtInt(hw - last.high_watermark)} more since loaded`;
    setText(info, msg);
    older.disabled = firstOffset() <= last.log_start_offset;
    newer.disabled = nextOffset() >= hw;
  }

  function firstOffset() {
    const recs = last.records || [];
    if (recs.length) return recs[0].offset;
    return isLatest() ? last.high_watermark : Number(offset.value.trim());
  }

  function nextOffset() {
    const recs = last.records || [];
    if (recs.length) return recs[recs.length - 1].offset + 1;
    return isLatest() ? last.high_watermark : Number(offset.value.trim());
  }

  // run reports a lost broker through the banner like any poll would.
  function run() {
    fetchRecords().then(() => setConnectedIfStale(), (e) => setConnected(false, e));
  }

  function goTo(off) {
    offset.value = String(off);
    syncFollow();
    run();
  }

  offset.addEventListener('input', syncFollow);
  offset.addEventListener('keydown', (e) => { if (e.key === 'Enter') run(); });
  limit.addEventListener('keydown', (e) => { if (e.key === 'Enter') run(); });
  load.addEventListener('click', run);
  partition.addEventListener('change', run);
  latest.addEventListener('click', () => {
    offset.value = '';
    syncFollow();
    run();
  });
  hex.addEventListener('change', () => {
    state.hex = hex.checked;
    render();
  });
  older.addEventListener('click', () => {
    if (!last) return;
    goTo(Math.max(last.log_start_offset, firstOffset() - limitValue()));
  });
  newer.addEventListener('click', () => {
    if (!last) return;
    goTo(nextOffset());
  });
  follow.addEventListener('change', () => { if (follow.checked) run(); });

  const p = panel('Records', 'record-browser',
    el('div', { class: 'panel-body controls' },
      el('label', { class: 'field' }, 'Partition', partition),
      el('label', { class: 'field' }, 'Offset', offset),
      el('label', { class: 'field' }, 'Limit', limit),
      load, latest,
      el('label', { class: 'field' }, follow, 'Follow latest'),
      el('label', { class: 'field' }, hex, 'Show as hex'),
      el('span', { class: 'spacer' }), older, newer),
    info,
    el('div', { class: 'scroll-x' }, table.el));
  p.head.append(el('span', { class: 'subtitle' }, 'committed records, up to the high watermark'));

  return {
    el: p.el,
    show(part) {
      partition.value = String(part);
      offset.value = '';
      syncFollow();
      run();
      p.el.scrollIntoView({ block: 'start' });
    },
    // poll keeps the partition list current and, when following, the
    // records; the first poll loads the latest records of partition 0.
    async poll(parts) {
      const have = new Set([...partition.options].map((o) => o.value));
      for (const x of parts) {
        const v = String(x.partition);
        if (!have.has(v)) partition.append(el('option', { value: v }, `${v}`));
      }
      const shown = parts.find((x) => String(x.partition) === partition.value);
      liveHW = shown ? shown.high_watermark : null;
      renderInfo();
      if (!loadedOnce && parts.length) {
        loadedOnce = true;
        await fetchRecords();
      } else if (follow.checked && isLatest()) {
        await fetchRecords();
      }
    },
  };
}

// setConnectedIfStale clears the banner after an on-demand request
// succeeded while the poller still thought the broker was gone.
function setConnectedIfStale() {
  if (!ui.banner.hidden) setConnected(true);
}

function stateKind(s) {
  switch (s) {
    case 'Stable': return 'ok';
    case 'Dead': return 'bad';
    case 'Empty': return '';
    default: return 'warn'; // rebalancing, assigning, reconciling
  }
}

function groupsView() {
  const count = el('span', { class: 'subtitle', testid: 'groups-count' });
  const filter = el('input', { type: 'search', placeholder: 'Filter groups', testid: 'groups-filter', 'aria-label': 'Filter groups' });
  let last = [];
  const table = new Table({
    testid: 'groups-table',
    key: (g) => g.group_id,
    empty: 'No consumer groups',
    columns: [
      { title: 'Group', render: (td, g) => setLink(td, '#/groups/' + enc(g.group_id), g.group_id, 'group-link') },
      { title: 'Type', text: (g) => g.type },
      { title: 'State', testid: 'group-state', render: (td, g) => setBadge(td, g.state, stateKind(g.state)) },
      { title: 'Members', num: true, testid: 'group-members', text: (g) => fmtInt(g.members) },
      { title: 'Lag', num: true, testid: 'group-lag', text: (g) => fmtInt(g.lag) },
      { title: 'Lag trend', cls: 'spark-cell', render: (td, g) => td.replaceChildren(sparkline(groupLagSeries(g.group_id), 'group-spark')) },
    ],
  });
  const render = () => {
    const q = filter.value.trim().toLowerCase();
    const rows = last.filter((g) => !q || g.group_id.toLowerCase().includes(q));
    table.update(rows);
    setText(count, `${fmtInt(rows.length)} of ${fmtInt(last.length)} groups`);
  };
  filter.addEventListener('input', render);
  const p = panel('All consumer groups', 'groups-panel', el('div', { class: 'scroll-x' }, table.el));
  p.head.append(el('span', { class: 'spacer' }), filter);
  return {
    nav: 'groups',
    wantsHistory: true,
    el: el('div', null, pageTitle(null, 'Consumer groups', 'page-title', count), p.el),
    async poll() {
      const data = await getJSON('/api/groups');
      last = Array.isArray(data.groups) ? data.groups : [];
      render();
    },
  };
}

function groupView(id) {
  const cards = {
    state: card('State', 'group-state', true),
    type: card('Type', 'group-type', true),
    protocol: card('Assignor', 'group-protocol', true),
    generation: card('Generation', 'group-generation'),
    members: card('Members', 'group-members'),
    lag: card('Total lag', 'group-lag'),
  };
  const missing = notice('', 'group-missing');
  missing.hidden = true;

  const membersNote = notice('This broker does not report members.', 'members-missing');
  membersNote.hidden = true;
  const members = new Table({
    testid: 'members-table',
    key: (m) => m.member_id,
    empty: 'No members',
    columns: [
      { title: 'Member', cls: 'mono', testid: 'member-id', text: (m) => m.member_id },
      { title: 'Instance', cls: 'mono', testid: 'member-instance', text: (m) => m.instance_id || '—' },
      { title: 'Client', testid: 'member-client', text: (m) => m.client_id || '—' },
      { title: 'Host', cls: 'mono', testid: 'member-host', text: (m) => m.host || '—' },
      { title: 'Assignment', testid: 'member-assignments', render: (td, m) => {
        const as = Array.isArray(m.assignments) ? m.assignments : [];
        const key = JSON.stringify(as);
        if (td.dataset.key === key) return;
        td.dataset.key = key;
        td.replaceChildren(...(as.length === 0 ? [el('span', { class: 'null' }, 'none')] : as.map((a) => el('div', { testid: 'member-assignment' },
          el('a', { href: '#/topics/' + enc(a.topic) }, a.topic), ': ',
          el('span', { class: 'mono' }, (a.partitions || []).join(', '))))));
      } },
    ],
  });

  const lag = new Table({
    testid: 'lag-table',
    key: (l) => `${l.topic}\u0000${l.partition}`,
    empty: 'No committed offsets',
    columns: [
      { title: 'Topic', render: (td, l) => setLink(td, '#/topics/' + enc(l.topic), l.topic) },
      { title: 'Partition', num: true, text: (l) => String(l.partition) },
      { title: 'Committed', num: true, testid: 'lag-committed', text: (l) => fmtInt(l.committed_offset) },
      { title: 'End offset', num: true, testid: 'lag-end', text: (l) => fmtInt(l.end_offset) },
      { title: 'Lag', num: true, testid: 'lag-value', text: (l) => fmtInt(l.lag) },
    ],
  });

  const chartHolder = el('div', { class: 'chart-wrap' });
  const chartCaption = el('span', { class: 'subtitle', testid: 'lag-chart-caption' });
  const chartPanel = panel('Lag over time', 'lag-chart-panel', chartHolder);
  chartPanel.head.append(chartCaption);
  const membersPanel = panel('Members', 'members-panel', membersNote, el('div', { class: 'scroll-x' }, members.el));
  const lagPanel = panel('Lag per partition', 'lag-panel', el('div', { class: 'scroll-x' }, lag.el));
  const body = el('div', null,
    el('div', { class: 'cards' }, Object.values(cards).map((c) => c.el)),
    chartPanel.el, membersPanel.el, lagPanel.el);

  function renderChart() {
    const h = state.history;
    const values = groupLagSeries(id);
    const times = h ? h.times_ms : [];
    // Drawn at the holder's pixel width, not scaled, so labels keep
    // their size; a resized window gets the new width at the next poll.
    const width = chartHolder.clientWidth - 28;
    chartHolder.replaceChildren(lineChart(values, times, { testid: 'lag-chart', lineTestid: 'lag-line', width }));
    const pts = values.filter((v) => v !== null && v !== undefined);
    if (!h || pts.length === 0) {
      setText(chartCaption, h ? 'no samples of this group yet' : 'this broker keeps no history');
      return;
    }
    const span = times.length > 1 ? times[times.length - 1] - times[0] : 0;
    setText(chartCaption, `min ${fmtInt(Math.min(...pts))} · max ${fmtInt(Math.max(...pts))} · over the last ${fmtSpan(span)}, sampled every ${fmtSpan(h.interval_ms || POLL_MS)}`);
  }

  return {
    nav: 'groups',
    wantsHistory: true,
    el: el('div', null, pageTitle(el('a', { href: '#/groups' }, 'Consumer groups'), id, 'page-title'), missing, body),
    async poll() {
      let g;
      try {
        g = await getJSON('/api/groups/' + enc(id));
      } catch (e) {
        if (!(e instanceof HTTPError) || e.status !== 404) throw e;
        setText(missing, `Group "${id}" does not exist (${e.message}).`);
        missing.hidden = false;
        body.hidden = true;
        return;
      }
      missing.hidden = true;
      body.hidden = false;
      setText(cards.state.value, g.state || '—');
      cards.state.value.className = 'card-value text state-' + stateKind(g.state);
      setText(cards.type.value, g.type || '—');
      setText(cards.protocol.value, g.protocol || '—');
      setText(cards.protocol.sub, g.protocol_type ? `protocol type ${g.protocol_type}` : '');
      setText(cards.generation.value, fmtInt(g.generation));
      setText(cards.members.value, fmtInt(g.members));
      setText(cards.lag.value, fmtInt(g.lag));
      // The summary's "members" is a count; the detail's, per the console
      // contract, is the list.
      const list = Array.isArray(g.members) ? g.members : null;
      if (list) {
        setText(cards.members.value, fmtInt(list.length));
        membersNote.hidden = true;
        members.el.hidden = false;
        members.update(list);
      } else {
        membersNote.hidden = false;
        members.el.hidden = true;
      }
      lag.update(Array.isArray(g.partitions) ? g.partitions : []);
      renderChart();
    },
  };
}

function brokerView() {
  const cards = {
    ready: card('Readiness', 'readiness', true),
    topics: card('Topics', 'broker-topics'),
    partitions: card('Partitions', 'broker-partitions'),
    size: card('Data on disk', 'broker-size'),
    groups: card('Consumer groups', 'broker-groups'),
  };
  const filter = el('input', { type: 'search', placeholder: 'Filter settings', testid: 'config-filter', 'aria-label': 'Filter settings' });
  let entries = [];
  const table = new Table({
    testid: 'config-table',
    key: (c) => c.name,
    empty: 'No settings',
    columns: [
      { title: 'Name', cls: 'mono', text: (c) => c.name },
      { title: 'Value', cls: 'mono', text: (c) => c.value },
      { title: 'Source', text: (c) => c.source },
    ],
  });
  // Settings that differ from the defaults are what an operator looks
  // for first: marked like a topic's overrides.
  const isSet = (c) => c.source !== 'default' && c.source !== 'DEFAULT_CONFIG';
  const render = () => {
    const q = filter.value.trim().toLowerCase();
    table.update(entries.filter((c) => !q || c.name.toLowerCase().includes(q) || String(c.value).toLowerCase().includes(q)),
      (c) => (isSet(c) ? 'override' : ''));
    setText(setCount, `${fmtInt(entries.length)} keys · ${fmtInt(entries.filter(isSet).length)} set`);
  };
  filter.addEventListener('input', render);
  const setCount = el('span', { class: 'subtitle', testid: 'config-count' });
  const p = panel('Configuration', 'config-panel', el('div', { class: 'scroll-x' }, table.el));
  p.head.append(setCount, el('span', { class: 'spacer' }), filter);
  return {
    nav: 'broker',
    wantsHistory: false,
    el: el('div', null, pageTitle(null, 'Broker', 'page-title'),
      el('div', { class: 'cards' }, Object.values(cards).map((c) => c.el)), p.el),
    async poll() {
      const [ready, topics, groups, config] = await Promise.all([
        getReady(), getJSON('/api/topics'), getJSON('/api/groups'), getJSON('/api/config')]);
      setText(cards.ready.value, ready.ok ? 'ready' : 'not ready');
      cards.ready.value.className = 'card-value text ' + (ready.ok ? 'state-ok' : 'state-bad');
      // The reason matters only when not ready ("ready" twice says nothing).
      setText(cards.ready.sub, ready.ok ? '' : ready.text);
      const ts = Array.isArray(topics.topics) ? topics.topics : [];
      setText(cards.topics.value, fmtInt(ts.length));
      setText(cards.partitions.value, fmtInt(ts.reduce((n, t) => n + (t.partitions || 0), 0)));
      setText(cards.size.value, fmtBytes(ts.reduce((n, t) => n + (t.size_bytes || 0), 0)));
      setText(cards.groups.value, fmtInt(Array.isArray(groups.groups) ? groups.groups.length : 0));
      entries = Array.isArray(config.config) ? config.config : [];
      state.config = entries;
      renderBrokerName();
      render();
    },
  };
}

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
  ui.view.replaceChildren(current.el);
  for (const a of document.querySelectorAll('.nav a')) a.classList.toggle('active', a.dataset.route === current.nav);
  window.scrollTo(0, 0);
  tick();
}

window.addEventListener('hashchange', enter);
if (!location.hash) history.replaceState(null, '', '#/topics');
enter();
