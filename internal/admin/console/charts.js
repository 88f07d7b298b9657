// Charts: inline SVG, drawn by hand (no library, nothing for the CSP to
// allow). Values are series with null where the broker took no sample.

import { svg } from './dom.js';
import { fmtClock, fmtInt } from './format.js';

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
export function sparkline(values, testid) {
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
export function lineChart(values, times, { testid, lineTestid, unit, width }) {
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
