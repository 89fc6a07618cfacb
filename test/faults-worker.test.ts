/**
 * A local-model session worker that dies: the requests it held get 503 with Retry-After,
 * /readyz shows the backend down meanwhile, and it is restarted (with backoff) and serves again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OnnxEmbedder } from '../src/backends/onnx/embedder.js';
import { startTestServer, type TestServer } from './support/server.js';
import { sleep } from './support/services.js';

let t: TestServer;
let key: string;
beforeAll(async () => {
  t = await startTestServer({ env: { MODEL_DIR: 'test/fixtures/tiny-bert' } });
  key = await t.key('local');
}, 60_000);
afterAll(async () => t?.close());

const embed = (input: string[]) =>
  t.server.app.inject({ method: 'POST', url: '/v1/embeddings', headers: { authorization: `Bearer ${key}` }, payload: { model: 'tiny-bert', input } });

describe('a dead local-model worker', () => {
  it('fails its requests with 503 + Retry-After, shows in /readyz, and is restarted', async () => {
    const onnx = t.server.registry.backends.find((b) => b.name === 'onnx') as OnnxEmbedder;
    const before = await embed(['before the crash']);
    expect(before.statusCode).toBe(200);

    // (Calls in flight when it dies fail the same way: see worker-rpc.test.ts.)
    await onnx.crashWorkers();
    const during = await embed(Array.from({ length: 64 }, (_, i) => `while down ${i}`));
    expect(during.statusCode).toBe(503);
    expect(during.headers['retry-after']).toBe('1');
    expect(during.json().error).toMatchObject({ type: 'service_unavailable', code: 'service_unavailable' });

    // The first restart waits 100 ms and then loads the model: still down now. (The test server
    // has the fake upstream too, so the service as a whole is degraded rather than not ready.)
    const down = await t.server.app.inject({ url: '/readyz' });
    expect(down.json()).toMatchObject({ status: 'degraded', checks: { onnx: false } });

    for (let i = 0; i < 200 && !(await onnx.ready()); i++) await sleep(100);
    expect(await onnx.ready()).toBe(true);
    const ready = await t.server.app.inject({ url: '/readyz' });
    expect(ready.json()).toMatchObject({ checks: { onnx: true } });
    const after = await embed(['after the crash']);
    expect(after.statusCode).toBe(200);
    // The restarted session computes what the old one did.
    t.server.embeddings.dropHotCache();
    const again = await embed(['before the crash']);
    expect(again.json().data[0].embedding).toEqual(before.json().data[0].embedding);
  }, 60_000);
});
