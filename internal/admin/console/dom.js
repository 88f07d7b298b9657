// DOM helpers for the console's views: elements built from props and
// children, text set only when it changed, and tables that keep one row per
// key across polls. Text always goes in through textContent or text nodes,
// never as markup.

const SVG_NS = 'http://www.w3.org/2000/svg';

// el builds an element. props: class, text, testid, on<event>, boolean
// properties (checked, disabled), anything else as an attribute. Children
// that are not Nodes become text nodes.
export function el(tag, props, ...children) {
  const e = document.createElement(tag);
  applyProps(e, props);
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

export function svg(tag, attrs) {
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
export function setText(node, text) {
  const s = String(text);
  if (node.textContent !== s) node.textContent = s;
}

export function setLink(td, href, text, testid) {
  let a = td.querySelector('a');
  if (!a) {
    a = el('a', { testid });
    td.prepend(a);
  }
  if (a.getAttribute('href') !== href) a.setAttribute('href', href);
  setText(a, text);
  return a;
}

export function badge(text, kind, testid) {
  return el('span', { class: 'badge' + (kind ? ' ' + kind : ''), testid }, text);
}

export function setBadge(td, text, kind) {
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
export class Table {
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

export function panel(title, testid, ...body) {
  const head = el('div', { class: 'panel-head' }, el('h2', null, title));
  return { el: el('section', { class: 'panel', testid }, head, ...body), head };
}

// card is a labelled figure; text cards (state, protocol) use a smaller
// face so a long assignor name does not wrap into three lines.
export function card(label, testid, text) {
  const value = el('div', { class: 'card-value' + (text ? ' text' : ''), testid }, '—');
  const sub = el('div', { class: 'card-sub', testid: testid + '-sub' });
  return { el: el('div', { class: 'card' }, el('div', { class: 'card-label' }, label), value, sub), value, sub };
}

export function pageTitle(crumbs, title, testid, ...extra) {
  return el('div', null,
    crumbs ? el('div', { class: 'crumbs' }, crumbs) : null,
    el('div', { class: 'title-row' }, el('h1', { testid }, title), ...extra));
}

export function notice(text, testid) {
  return el('p', { class: 'empty', testid }, text);
}
