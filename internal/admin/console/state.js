// What outlives a view: the broker's sampled history and configuration as
// last fetched, the poll count, and the user's toggles. The series the
// charts and rate columns draw are derived from the history here.

export const state = {
  history: null, // last /api/history, or null if the broker has none
  config: null, // last /api/config entries
  polls: 0,
  lastOK: 0,
  showInternal: false,
  hex: false,
};

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

export function lastValue(values) {
  for (let i = values.length - 1; i >= 0; i--) if (values[i] !== null && values[i] !== undefined) return values[i];
  return null;
}

export function topicRates(name) {
  const h = state.history;
  const t = h && h.topics && h.topics[name];
  if (!t || !Array.isArray(t.records)) return [];
  return rates(t.records, h.times_ms);
}

export function groupLagSeries(id) {
  const h = state.history;
  const g = h && h.groups && h.groups[id];
  return g && Array.isArray(g.lag) ? g.lag : [];
}
