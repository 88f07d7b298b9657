// A consumer group's page (#/groups/{id}): its state, members, lag over
// time and lag per partition.

import { HTTPError, POLL_MS, getJSON } from './api.js';
import { lineChart } from './charts.js';
import { Table, card, el, notice, pageTitle, panel, setLink, setText } from './dom.js';
import { enc, fmtInt, fmtSpan } from './format.js';
import { groupLagSeries, state } from './state.js';
import { stateKind } from './groups.js';

export function groupView(id) {
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
