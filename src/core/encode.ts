import { bytesToVector, vectorToJson } from './codec.js';
import { deriveDimensions } from './dimensions.js';
import type { EmbeddedItem } from './embed-service.js';
import type { DimensionsMethod } from './types.js';

export type EncodingFormat = 'float' | 'base64';

/**
 * One embedding as JSON value text. At full dimension the base64 form is the stored bytes
 * themselves; a shorter `dimensions` is derived from them (the same way on a hit as on a miss).
 */
export function encodeVector(bytes: Buffer, format: EncodingFormat, dims: number | undefined, method: DimensionsMethod): string {
  const full = bytes.length / 4;
  if (dims === undefined || dims === full) {
    return format === 'base64' ? `"${bytes.toString('base64')}"` : vectorToJson(bytesToVector(bytes));
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
): string {
  let s = '{"object":"list","data":[';
  for (let i = 0; i < items.length; i++) {
    if (i > 0) s += ',';
    s += `{"object":"embedding","index":${i},"embedding":${encodeVector(items[i].bytes, format, dims, method)}}`;
  }
  return s + `],"model":${JSON.stringify(model)},"usage":{"prompt_tokens":${promptTokens},"total_tokens":${promptTokens}}}`;
}
