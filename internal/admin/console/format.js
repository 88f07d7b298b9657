// Formatting for people: counts, sizes, rates, spans and times, and the
// decoding of the base64 byte strings the records endpoint returns.

const intFmt = new Intl.NumberFormat('en-US');

export function fmtInt(n) {
  return typeof n === 'number' && Number.isFinite(n) ? intFmt.format(n) : '—';
}

export function fmtBytes(n) {
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

export function fmtRate(r) {
  if (typeof r !== 'number' || !Number.isFinite(r)) return '—';
  if (r === 0) return '0 rec/s';
  if (r < 10) return `${r.toFixed(1)} rec/s`;
  if (r < 1000) return `${Math.round(r)} rec/s`;
  if (r < 1e6) return `${(r / 1e3).toFixed(1)}k rec/s`;
  return `${(r / 1e6).toFixed(1)}M rec/s`;
}

export function fmtSpan(ms) {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 ? `${m} min ${s % 60} s` : `${m} min`;
  const h = Math.floor(m / 60);
  return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
}

export function fmtClock(ms) {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? '—' : d.toTimeString().slice(0, 8);
}

export function fmtTimestamp(ms) {
  if (typeof ms !== 'number' || ms < 0) return 'none';
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? String(ms) : d.toISOString();
}

export function enc(s) {
  return encodeURIComponent(s);
}

// Bytes: base64 from the API, shown as text when printable UTF-8, else hex.

const strictUTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
// Control characters (but tab, newline, carriage return), DEL, C1 controls,
// line/paragraph separators and non-characters make a value binary.
const unprintable = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u2028\u2029\ufffe\uffff]/;

export function b64ToBytes(b64) {
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
export function printableText(bytes, cut) {
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

export function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(' ');
}
