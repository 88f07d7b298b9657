// The consumer groups page (#/groups): every group with its state, members
// and lag.

import { getJSON } from './api.js';
import { sparkline } from './charts.js';
import { Table, el, pageTitle, panel, setBadge, setLink, setText } from './dom.js';
import { enc, fmtInt } from './format.js';
import { groupLagSeries } from './state.js';

export function stateKind(s) {
  switch (s) {
    case 'Stable': return 'ok';
    case 'Dead': return 'bad';
    case 'Empty': return '';
    default: return 'warn'; // rebalancing, assigning, reconciling
  }
}

export function groupsView() {
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
