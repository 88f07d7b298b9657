// The topics page (#/topics): every topic with its size, records and
// throughput.

import { getJSON } from './api.js';
import { sparkline } from './charts.js';
import { Table, badge, el, pageTitle, panel, setLink, setText } from './dom.js';
import { enc, fmtBytes, fmtInt, fmtRate } from './format.js';
import { lastValue, state, topicRates } from './state.js';

export function topicsView() {
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
      { title: 'Records', num: true, testid: 'topic-records', text: (t) => fmtInt(t.records) },
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
      render();
    },
  };
}
