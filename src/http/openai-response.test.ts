import { describe, expect, it } from 'vitest';
import { base64ToVector, vectorToBytes } from '../core/codec.js';
import { deriveDimensions } from '../core/dimensions.js';
import { encodeEmbeddingsResponse, encodeVector, VectorTextCache } from './openai-response.js';

const full = Float32Array.from({ length: 8 }, (_, i) => (i + 1) / 10);
const bytes = vectorToBytes(full);

describe('response encoders', () => {
  it('sends the stored bytes themselves as base64 at full dimension', () => {
    expect(encodeVector(bytes, 'base64', undefined, 'truncate')).toBe(`"${bytes.toString('base64')}"`);
  });

  it('derives dimensions identically for float and base64', () => {
    const f = JSON.parse(encodeVector(bytes, 'float', 4, 'truncate')) as number[];
    const b = base64ToVector(JSON.parse(encodeVector(bytes, 'base64', 4, 'truncate')) as string);
    expect(f).toEqual(Array.from(b));
    expect(f).toEqual(Array.from(deriveDimensions(full, 4, 'truncate')));
  });

  it('remembers the JSON text of a vector and gives the same text', () => {
    const texts = new VectorTextCache(1 << 20);
    const a = encodeVector(bytes, 'float', undefined, 'truncate', texts);
    expect(encodeVector(bytes, 'float', undefined, 'truncate', texts)).toBe(a);
    expect(a).toBe(encodeVector(bytes, 'float', undefined, 'truncate'));
  });

  it('assembles full-dimension float responses from cached JSON bytes, identical to the string form', () => {
    const items = [{ bytes, tokens: 3, cached: true }, { bytes: vectorToBytes(Float32Array.from([1, -0, 0.5])), tokens: 2, cached: false }];
    const viaCache = encodeEmbeddingsResponse('m', items, 5, 'float', undefined, 'truncate', new VectorTextCache(1 << 20));
    expect(Buffer.isBuffer(viaCache)).toBe(true);
    expect(viaCache.toString()).toBe(encodeEmbeddingsResponse('m', items, 5, 'float', undefined, 'truncate'));
    expect(JSON.parse(viaCache.toString()).data[1].embedding).toEqual([1, -0, 0.5]);
    const b64 = encodeEmbeddingsResponse('m', items, 5, 'base64', undefined, 'truncate', new VectorTextCache(1 << 20));
    expect(b64.toString()).toBe(encodeEmbeddingsResponse('m', items, 5, 'base64', undefined, 'truncate'));
  });

  it('remembers the text of a vector served as a hit, not of one just computed', () => {
    const texts = new VectorTextCache(1 << 20);
    const computed = { bytes: vectorToBytes(Float32Array.from([0.25, 0.5])), tokens: 1, cached: false };
    for (const format of ['float', 'base64'] as const) encodeEmbeddingsResponse('m', [computed], 1, format, undefined, 'truncate', texts);
    expect(texts.size).toBe(0);
    const hit = { ...computed, cached: true };
    const first = encodeEmbeddingsResponse('m', [hit], 1, 'base64', undefined, 'truncate', texts);
    expect(texts.size).toBe(1);
    expect(encodeEmbeddingsResponse('m', [hit], 1, 'base64', undefined, 'truncate', texts)).toEqual(first);
    expect(texts.base64(hit.bytes)).toBe(texts.base64(hit.bytes));
  });

  it('builds OpenAI’s response body', () => {
    const body = JSON.parse(encodeEmbeddingsResponse('m', [{ bytes, tokens: 3, cached: true }, { bytes, tokens: 2, cached: false }], 5, 'float', 2, 'truncate').toString());
    expect(body).toMatchObject({ object: 'list', model: 'm', usage: { prompt_tokens: 5, total_tokens: 5 } });
    expect(body.data.map((d: { index: number; object: string }) => [d.index, d.object])).toEqual([[0, 'embedding'], [1, 'embedding']]);
    expect(body.data[1].embedding).toHaveLength(2);
  });
});
