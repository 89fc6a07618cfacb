import { LRUCache } from 'lru-cache';
import { bytesToVector, vectorToJson } from '../core/codec.js';
import { deriveDimensions } from '../core/dimensions.js';
import type { EmbeddedItem } from '../core/embed-service.js';
import type { DimensionsMethod } from '../core/types.js';

export type EncodingFormat = 'float' | 'base64';

/**
 * JSON text of full-dimension vectors, remembered per stored vector (by identity: the hot cache
 * hands out the same Buffer for every hit). Formatting 768 floats costs ~100 µs; a hit served
 * as `float` then costs what a base64 one does. Bounded in bytes, separately from the hot cache.
 * Only a vector served as a hit is remembered: a miss's text would be a second in-memory copy of
 * every computed vector, most of them never asked for again.
 */
export class VectorTextCache {
  private readonly floats: LRUCache<Buffer, Buffer> | null;
  private readonly base64s: LRUCache<Buffer, Buffer> | null;

  constructor(maxBytes: number) {
    const make = (share: number) =>
      maxBytes > 0 ? new LRUCache<Buffer, Buffer>({ maxSize: Math.floor(maxBytes * share), sizeCalculation: (text) => text.length + 64 }) : null;
    this.floats = make(0.75);
    this.base64s = make(0.25);
  }

  /** The vector's JSON array as ASCII bytes (kept as bytes: responses are assembled by copying); kept for next time when `keep`. */
  json(bytes: Buffer, keep = true): Buffer {
    return remember(this.floats, bytes, () => vectorToJson(bytesToVector(bytes)), keep);
  }

  /** The vector's base64 string, quoted, as ASCII bytes; kept for next time when `keep`. */
  base64(bytes: Buffer, keep = true): Buffer {
    return remember(this.base64s, bytes, () => `"${bytes.toString('base64')}"`, keep);
  }

  /** Texts remembered (tests). */
  get size(): number {
    return (this.floats?.size ?? 0) + (this.base64s?.size ?? 0);
  }
}

function remember(lru: LRUCache<Buffer, Buffer> | null, key: Buffer, make: () => string, keep: boolean): Buffer {
  let text = lru?.get(key);
  if (text === undefined) {
    text = Buffer.from(make(), 'latin1');
    if (keep) lru?.set(key, text);
  }
  return text;
}

/**
 * One embedding as JSON value text. At full dimension the base64 form is the stored bytes
 * themselves; a shorter `dimensions` is derived from them (the same way on a hit as on a miss).
 */
export function encodeVector(bytes: Buffer, format: EncodingFormat, dims: number | undefined, method: DimensionsMethod, texts?: VectorTextCache): string {
  const full = bytes.length / 4;
  if (dims === undefined || dims === full) {
    if (format === 'base64') return `"${bytes.toString('base64')}"`;
    return texts ? texts.json(bytes).toString('latin1') : vectorToJson(bytesToVector(bytes));
  }
  const v = deriveDimensions(bytesToVector(bytes), dims, method);
  return format === 'base64' ? `"${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64')}"` : vectorToJson(v);
}

/**
 * The whole OpenAI /v1/embeddings response body, built as one string (no intermediate objects),
 * or, at full dimension with a text cache, as one Buffer copied from the cached text bytes of
 * each vector (a 64 × 768 float response is 1 MB: concatenating and re-encoding it as a string
 * cost more than everything else on the request).
 */
export function encodeEmbeddingsResponse(
  model: string,
  items: EmbeddedItem[],
  promptTokens: number,
  format: EncodingFormat,
  dims: number | undefined,
  method: DimensionsMethod,
  texts?: VectorTextCache,
): string | Buffer {
  const tail = `],"model":${JSON.stringify(model)},"usage":{"prompt_tokens":${promptTokens},"total_tokens":${promptTokens}}}`;
  if (texts && items.every((it) => dims === undefined || dims === it.bytes.length / 4)) {
    const parts: Buffer[] = [HEAD];
    let length = HEAD.length;
    for (let i = 0; i < items.length; i++) {
      const { bytes, cached } = items[i];
      const value = format === 'float' ? texts.json(bytes, cached) : texts.base64(bytes, cached);
      const head = itemHead(i);
      parts.push(head, value, CLOSE);
      length += head.length + value.length + CLOSE.length;
    }
    const end = Buffer.from(tail, 'utf8');
    parts.push(end);
    return Buffer.concat(parts, length + end.length);
  }
  let s = '{"object":"list","data":[';
  for (let i = 0; i < items.length; i++) {
    if (i > 0) s += ',';
    s += `{"object":"embedding","index":${i},"embedding":${encodeVector(items[i].bytes, format, dims, method, texts)}}`;
  }
  return s + tail;
}

const CLOSE = Buffer.from('}', 'latin1');
const HEAD = Buffer.from('{"object":"list","data":[', 'latin1');
/** Each index's `{"object":"embedding","index":i,"embedding":` (comma first after 0), made once; kept for the first 4096 indexes (MAX_INPUTS defaults to 2048), made per response past them. */
const ITEM_HEADS: Buffer[] = [];
function itemHead(i: number): Buffer {
  let b = ITEM_HEADS[i];
  if (!b) {
    b = Buffer.from(`${i > 0 ? ',' : ''}{"object":"embedding","index":${i},"embedding":`, 'latin1');
    if (i < 4096) ITEM_HEADS[i] = b;
  }
  return b;
}
