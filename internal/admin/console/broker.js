// The broker page (#/broker): readiness, totals and the configuration.

import { getJSON, getReady, renderBrokerName } from './api.js';
import { Table, card, el, pageTitle, panel, setText } from './dom.js';
import { fmtBytes, fmtInt } from './format.js';
import { state } from './state.js';

export function brokerView() {
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
