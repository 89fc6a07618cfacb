/**
 * Deterministic benchmark texts, shared by the harness (which warms the cache) and the load
 * worker (which sends them): sentence-like, 12 to 27 words, about the size of a search query
 * or a short chunk.
 */
const WORDS = (
  'the of and to in is that for it as was with be by on not he this are or his from at which but have an they you were her ' +
  'cache vector model embedding search query document index tenant server request latency proxy storage network memory ' +
  'river mountain forest ocean city village garden kitchen library market station bridge window morning evening winter summer ' +
  'quickly slowly carefully gently brightly quietly loudly happily calmly eagerly rarely often always never sometimes'
).split(' ');

/** A small fast PRNG (mulberry32), seeded, so texts are reproducible. */
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function hashString(s) {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

/** Text number `i` of the family `family`: same arguments, same text. */
export function text(family, i) {
  const r = rng(hashString(family) ^ Math.imul(i + 1, 2654435761));
  const n = 12 + Math.floor(r() * 16);
  let s = `${family} ${i}:`;
  for (let k = 0; k < n; k++) s += ' ' + WORDS[Math.floor(r() * WORDS.length)];
  return s;
}

/** Samples ranks 0..n-1 with P(k) proportional to 1/(k+1)^s. */
export function zipfSampler(n, s, random) {
  const cdf = new Float64Array(n);
  let acc = 0;
  for (let k = 0; k < n; k++) {
    acc += 1 / Math.pow(k + 1, s);
    cdf[k] = acc;
  }
  for (let k = 0; k < n; k++) cdf[k] /= acc;
  return () => {
    const u = random();
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cdf[mid] < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}
