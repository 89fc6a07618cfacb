/** Number formats of the pages, fixed to en-US so figures read the same everywhere (and in tests). */
const intFmt = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const pctFmt = new Intl.NumberFormat('en-US', { style: 'percent', minimumFractionDigits: 1, maximumFractionDigits: 1 });
const oneDecimal = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });

export const int = (n: number): string => intFmt.format(n);

export const pct = (ratio: number): string => pctFmt.format(ratio);

const cents = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD', minimumFractionDigits: 2, maximumFractionDigits: 2 });
const small = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD', maximumSignificantDigits: 3 });

/** Dollars with cents; below a cent, three significant digits (a young cache saves fractions of one). */
export const usd = (n: number): string => (n === 0 || Math.abs(n) >= 0.01 ? cents.format(n) : small.format(n));

export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${oneDecimal.format(v)} ${units[i]}`;
}

export const ms = (n: number | null): string => (n === null ? '—' : `${oneDecimal.format(n)} ms`);

/** `2026-12-01 10:04 UTC`: the server's buckets are UTC, so times are shown in UTC too. */
export function utc(iso: string | null): string {
  if (!iso) return 'never';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}
