import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { base64ToVector } from '../src/core/codec.js';
import { startTestServer, type TestServer } from './support/server.js';
import { tinyBertWithPrompts } from '../src/testing/model-fixtures.js';

interface GoldenCase {
  text: string;
  task_type: string;
  input_ids: number[];
  tokens: number;
  embedding: number[];
  matryoshka: Record<string, number[]>;
}
const golden = JSON.parse(readFileSync(new URL('./fixtures/tiny-bert/golden-public.json', import.meta.url), 'utf8')) as { cases: GoldenCase[] };

let t: TestServer;
let key: string;
beforeAll(async () => {
  // The golden vectors were computed with nomic's task prefixes: a copy that declares them.
  t = await startTestServer({ env: { MODEL_DIR: tinyBertWithPrompts() } });
  key = await t.key('local');
});
afterAll(async () => t?.close());

const embed = (body: Record<string, unknown>) =>
  t.server.app.inject({
    method: 'POST',
    url: '/v1/embeddings',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    payload: body,
  });

function expectClose(got: number[], want: number[], tol: number) {
  expect(got).toHaveLength(want.length);
  const worst = Math.max(...got.map((g, i) => Math.abs(g - want[i])));
  expect(worst).toBeLessThan(tol);
}

describe('local model through HTTP (golden vectors of the reference stack)', () => {
  it.each(golden.cases.map((c, i) => [i, c.task_type, c] as const))('case %i (%s): vector, Matryoshka dims and token count match', async (_i, _task, c) => {
    const res = await embed({ model: 'tiny-bert', input: c.text, task_type: c.task_type });
    expect(res.statusCode).toBe(200);
    expectClose(res.json().data[0].embedding, c.embedding, 1e-5);
    expect(res.json().usage.prompt_tokens).toBe(c.tokens);
    for (const [d, want] of Object.entries(c.matryoshka)) {
      const r = await embed({ model: 'tiny-bert', input: c.text, task_type: c.task_type, dimensions: Number(d) });
      expectClose(r.json().data[0].embedding, want, 1e-5);
    }
  });

  it('selects the task prefix by model alias as by task_type', async () => {
    const c = golden.cases.find((x) => x.task_type === 'search_query')!;
    const res = await embed({ model: 'tiny-bert-search_query', input: c.text });
    expectClose(res.json().data[0].embedding, c.embedding, 1e-5);
  });

  it('takes token-id input as the model’s own ids (the golden ids give the golden vector)', async () => {
    const c = golden.cases[0];
    const res = await embed({ model: 'tiny-bert', input: c.input_ids });
    expect(res.statusCode).toBe(200);
    expectClose(res.json().data[0].embedding, c.embedding, 1e-5);
    expect(res.json().usage.prompt_tokens).toBe(c.tokens);
  });

  it('gives the same vectors when all cases run concurrently (batched, padded)', async () => {
    t.server.embeddings.dropHotCache();
    await t.server.db.sql`DELETE FROM embeddings`;
    const results = await Promise.all(golden.cases.map((c) => embed({ model: 'tiny-bert', input: c.text, task_type: c.task_type, encoding_format: 'base64' })));
    results.forEach((r, i) => {
      const v = Array.from(base64ToVector(r.json().data[0].embedding));
      expectClose(v, golden.cases[i].embedding, 1e-5);
    });
  });

  it('caches local vectors per task type: the second call is a bit-identical hit', async () => {
    const a = await embed({ model: 'tiny-bert', input: 'cache me locally', task_type: 'clustering' });
    const b = await embed({ model: 'tiny-bert', input: 'cache me locally', task_type: 'clustering' });
    const other = await embed({ model: 'tiny-bert', input: 'cache me locally', task_type: 'classification' });
    expect(a.headers['x-cache']).toBe('miss');
    expect(b.headers['x-cache']).toBe('hit');
    expect(b.body).toBe(a.body);
    expect(other.headers['x-cache']).toBe('miss');
    expect(other.json().data[0].embedding).not.toEqual(a.json().data[0].embedding);
  });

  it('reports the model queue and batch sizes in /metrics', async () => {
    const text = (await t.server.app.inject({ url: '/metrics' })).body;
    expect(text).toMatch(/ec_backend_queue_depth\{model="tiny-bert"\} 0/);
    expect(text).toMatch(/ec_backend_batch_inputs_count\{backend="onnx"\} [1-9]/);
  });

  it('refuses out-of-vocabulary token ids with a 400', async () => {
    const res = await embed({ model: 'tiny-bert', input: [2, 999999, 3] });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.type).toBe('invalid_request_error');
  });
});

describe('models pulled into DATA_DIR/models', () => {
  it('are served without MODEL_DIR', async () => {
    const { mkdtempSync, cpSync } = await import('node:fs');
    const os = await import('node:os');
    const path = await import('node:path');
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'ec-data-'));
    cpSync(tinyBertWithPrompts(), path.join(dataDir, 'models', 'tiny-bert'), { recursive: true });
    const s = await startTestServer({ env: { DATA_DIR: dataDir } });
    try {
      const k = await s.key('pulled');
      const res = await s.server.app.inject({ url: '/v1/models', headers: { authorization: `Bearer ${k}` } });
      expect(res.json().data.map((m: { id: string }) => m.id)).toContain('tiny-bert-search_query');
    } finally {
      await s.close();
    }
  });
});

describe('two sessions fed by one queue (EMBED_SESSIONS=2, the CUDA default)', () => {
  it('give the golden vectors under concurrent load', async () => {
    const s = await startTestServer({ env: { MODEL_DIR: tinyBertWithPrompts(), EMBED_SESSIONS: '2', EMBED_TOKENIZER_THREADS: '2' } });
    try {
      const k = await s.key('twin');
      const results = await Promise.all(
        golden.cases.map((c) =>
          s.server.app.inject({ method: 'POST', url: '/v1/embeddings', headers: { authorization: `Bearer ${k}` }, payload: { model: 'tiny-bert', input: c.text, task_type: c.task_type } }),
        ),
      );
      results.forEach((r, i) => expectClose(r.json().data[0].embedding, golden.cases[i].embedding, 1e-5));
    } finally {
      await s.close();
    }
  });
});
