/**
 * Id sequences as two flat buffers for crossing a worker boundary: moving two buffers is
 * nearly free, while structured-cloning thousands of small arrays costs the receiving
 * thread (the event loop) milliseconds.
 */
/** One input's token ids: a plain array, or a view into a PackedIds buffer. */
export type TokenIds = ArrayLike<number>;

export interface PackedIds {
  /** Every sequence's ids, back to back. */
  ids: Int32Array<ArrayBuffer>;
  /** Each sequence's length. */
  lengths: Int32Array<ArrayBuffer>;
}

export function pack(sequences: readonly TokenIds[]): PackedIds {
  const lengths = Int32Array.from(sequences, (s) => s.length);
  const ids = new Int32Array(lengths.reduce((n, l) => n + l, 0));
  let offset = 0;
  for (const s of sequences) {
    ids.set(s, offset);
    offset += s.length;
  }
  return { ids, lengths };
}

/** Views into the packed buffer, no copies (copying 2048 arrays back costs ~7 ms). */
export function unpack({ ids, lengths }: PackedIds): Int32Array[] {
  const out: Int32Array[] = [];
  let offset = 0;
  for (const length of lengths) {
    out.push(ids.subarray(offset, offset + length));
    offset += length;
  }
  return out;
}
