// A topic's page (#/topics/{name}): its partitions, its configuration and
// the record browser.

import { HTTPError, getJSON, isDisconnect, setConnected, setConnectedIfStale } from './api.js';
import { Table, badge, card, el, notice, pageTitle, panel, setBadge, setText } from './dom.js';
import { b64ToBytes, enc, fmtBytes, fmtInt, fmtRate, fmtTimestamp, printableText, toHex } from './format.js';
import { lastValue, state, topicRates } from './state.js';

// The record browser's page size, as the server's RecordsLimitDefault and
// RecordsLimitMax: asking for more would silently get fewer.
const RECORDS_LIMIT_DEFAULT = 20;
const RECORDS_LIMIT_MAX = 200;

export function topicView(name) {
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
      setText(cards.records.value, fmtInt(t.records));
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
