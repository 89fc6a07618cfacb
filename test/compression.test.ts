import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './support/server.js';

// What Node's fetch, and so the OpenAI SDK, sends.
const SDK_ACCEPT = 'gzip, deflate, br';

let auto: TestServer;
let gzip: TestServer;
let autoKey: string;
let gzipKey: string;

beforeAll(async () => {
  [auto, gzip] = await Promise.all([startTestServer(), startTestServer({ env: { COMPRESSION: 'gzip', COMPRESSION_MIN_BYTES: '1024' } })]);
  [autoKey, gzipKey] = await Promise.all([auto.key('acme'), gzip.key('acme')]);
});
afterAll(async () => Promise.all([auto?.close(), gzip?.close()]));

/** A client on another machine (a documentation address) unless `from` says otherwise. */
const post = (t: TestServer, key: string, body: unknown, acceptEncoding?: string, from = '203.0.113.7') =>
  t.server.app.inject({
    method: 'POST',
    url: '/v1/embeddings',
    remoteAddress: from,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, ...(acceptEncoding ? { 'accept-encoding': acceptEncoding } : {}) },
    payload: JSON.stringify(body),
  });

const inputs = (tag: string, n: number) => Array.from({ length: n }, (_, i) => `${tag} text ${i}`);

describe('response compression (COMPRESSION=auto, the default)', () => {
  it('never compresses base64 embeddings, even large ones, for the SDK’s accept-encoding', async () => {
    const body = { model: 'text-embedding-3-small', input: inputs('b64', 64), encoding_format: 'base64' };
    const res = await post(auto, autoKey, body, SDK_ACCEPT);
    expect(res.statusCode).toBe(200);
    expect(res.rawPayload.length).toBeGreaterThan(65536);
    expect(res.headers['content-encoding']).toBeUndefined();
    expect(res.json().data).toHaveLength(64);
  });

  it('compresses a large float response with brotli when accepted, gzip otherwise; the bytes decode to the identity body', async () => {
    const body = { model: 'text-embedding-3-small', input: inputs('float', 8), encoding_format: 'float' };
    const plain = await post(auto, autoKey, body);
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.rawPayload.length).toBeGreaterThan(65536);
    const br = await post(auto, autoKey, body, SDK_ACCEPT);
    expect(br.headers['content-encoding']).toBe('br');
    expect(br.headers.vary).toBe('accept-encoding');
    expect(Number(br.headers['content-length'])).toBe(br.rawPayload.length);
    expect(br.rawPayload.length).toBeLessThan(plain.rawPayload.length);
    expect(brotliDecompressSync(br.rawPayload).equals(plain.rawPayload)).toBe(true);
    const gz = await post(auto, autoKey, body, 'gzip, deflate');
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(gz.rawPayload).equals(plain.rawPayload)).toBe(true);
  });

  it('sends a large float response as it is to a client on this machine (loopback), the SDK\'s headers or not', async () => {
    const body = { model: 'text-embedding-3-small', input: inputs('local', 8), encoding_format: 'float' };
    for (const from of ['127.0.0.1', '::1', '::ffff:127.0.0.1']) {
      const res = await post(auto, autoKey, body, SDK_ACCEPT, from);
      expect(res.rawPayload.length).toBeGreaterThan(65536);
      expect(res.headers['content-encoding']).toBeUndefined();
    }
  });

  it('sends a float response under COMPRESSION_MIN_BYTES as it is', async () => {
    const res = await post(auto, autoKey, { model: 'text-embedding-3-small', input: 'one small float', encoding_format: 'float' }, SDK_ACCEPT);
    expect(res.rawPayload.length).toBeLessThan(65536);
    expect(res.headers['content-encoding']).toBeUndefined();
  });
});

describe('response compression (COMPRESSION=gzip)', () => {
  it('compresses base64 embeddings too, with gzip even when the client accepts br', async () => {
    const body = { model: 'text-embedding-3-small', input: 'forced gzip', encoding_format: 'base64' };
    const plain = await post(gzip, gzipKey, body);
    const res = await post(gzip, gzipKey, body, SDK_ACCEPT);
    expect(res.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(res.rawPayload).equals(plain.rawPayload)).toBe(true);
    // Asked for explicitly: a client on this machine gets it too.
    expect((await post(gzip, gzipKey, body, SDK_ACCEPT, '127.0.0.1')).headers['content-encoding']).toBe('gzip');
  });
});
