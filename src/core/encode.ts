import { LRUCache } from 'lru-cache';
import { bytesToVector, vectorToJson } from './codec.js';
import { deriveDimensions } from './dimensions.js';
import type { EmbeddedItem } from './embed-service.js';
import type { DimensionsMethod } from './types.js';

export type EncodingFormat = 'float' | 'base64';

/**
 * JSON text of full-dimension vectors, remembered per stored vector (by identity: the hot cache
 * hands out the same Buffer for every hit). Formatting 768 floats costs ~100 µs; a hit served
 * as `float` then costs what a base64 one does. Bounded in bytes, separately from the hot cache.
 */
export class VectorTextCache {
  private readonly lru: LRUCache<Buffer, string> | null;

  constructor(maxBytes: number) {
    this.lru = maxBytes > 0 ? new LRUCache<Buffer, string>({ maxSize: maxBytes, sizeCalculation: (text) => text.length + 64 }) : null;
  }

  json(bytes: Buffer): string {
    let text = this.lru?.get(bytes);
    if (text === undefined) {
      text = vectorToJson(bytesToVector(bytes));
      this.lru?.set(bytes, text);
    }
    return text;
  }
}

/**
 * One embedding as JSON value text. At full dimension the base64 form is the stored bytes
 * themselves; a shorter `dimensions` is derived from them (the same way on a hit as on a miss).
 */
export function encodeVector(bytes: Buffer, format: EncodingFormat, dims: number | undefined, method: DimensionsMethod, texts?: VectorTextCache): string {
  const full = bytes.length / 4;
  if (dims === undefined || dims === full) {
    if (format === 'base64') return `"${bytes.toString('base64')}"`;
    return texts ? texts.json(bytes) : vectorToJson(bytesToVector(bytes));
  }
  const v = deriveDimensions(bytesToVector(bytes), dims, method);
  return format === 'base64' ? `"${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64')}"` : vectorToJson(v);
}

/** The whole OpenAI /v1/embeddings response body, built as one string (no intermediate objects). */
export function encodeEmbeddingsResponse(
  model: string,
  items: EmbeddedItem[],
  promptTokens: number,
  format: EncodingFormat,
  dims: number | undefined,
  method: DimensionsMethod,
  texts?: VectorTextCache,
): string {
  let s = '{"object":"list","data":[';
  for (let i = 0; i < items.length; i++) {
    if (i > 0) s += ',';
    s += `{"object":"embedding","index":${i},"embedding":${encodeVector(items[i].bytes, format, dims, method, texts)}}`;
  }
  return s + `],"model":${JSON.stringify(model)},"usage":{"prompt_tokens":${promptTokens},"total_tokens":${promptTokens}}}`;
}
