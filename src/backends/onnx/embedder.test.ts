import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deriveDimensions } from '../../core/dimensions.js';
import { DomainError } from '../../core/errors.js';
import type { TaskType } from '../../core/types.js';
import { createOnnxEmbedder, type OnnxEmbedder } from './embedder.js';
import { tinyBertWithPrompts } from '../../testing/model-fixtures.js';

// tiny-bert declaring nomic's prompts: the golden vectors were computed with them.
const MODEL_DIR = tinyBertWithPrompts();

interface GoldenCase {
  text: string;
  task_type: TaskType;
  input_ids: number[];
  tokens: number;
  embedding: number[];
  matryoshka: Record<string, number[]>;
}
const golden = JSON.parse(readFileSync(`${MODEL_DIR}/golden-public.json`, 'utf8')) as { cases: GoldenCase[] };

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

describe('OnnxEmbedder on the tiny-bert fixture', () => {
  let embedder: OnnxEmbedder;
  beforeAll(async () => {
    embedder = await createOnnxEmbedder({ modelDirs: [MODEL_DIR], device: 'cpu', threads: 1, maxWaitMs: 5 });
  });
  afterAll(async () => {
    await embedder.close();
  });

  it('serves the base id and one alias per task type, all cached under the base id', () => {
    const specs = embedder.models();
    expect(specs.map((s) => s.id)).toEqual([
      'tiny-bert',
      'tiny-bert-search_document',
      'tiny-bert-search_query',
      'tiny-bert-clustering',
      'tiny-bert-classification',
    ]);
    for (const s of specs) {
      expect(s).toMatchObject({ cacheModel: 'tiny-bert', dimensions: 64, maxInputTokens: 128, dimensionsMethod: 'layernorm-truncate' });
    }
    expect(specs[0].defaultTaskType).toBe('search_document');
    expect(specs[2].defaultTaskType).toBe('search_query');
  });

  it('reproduces every golden case: token count, embedding within 1e-5, each Matryoshka dim within 1e-5', async () => {
    for (const c of golden.cases) {
      const { vectors, tokens } = await embedder.embed('tiny-bert', [{ kind: 'text', text: c.text }], { taskType: c.task_type });
      expect(tokens).toEqual([c.input_ids.length]);
      expect(c.tokens).toBe(c.input_ids.length);
      expect(maxAbsDiff(vectors[0], c.embedding)).toBeLessThan(1e-5);
      for (const [dims, expected] of Object.entries(c.matryoshka)) {
        expect(maxAbsDiff(deriveDimensions(vectors[0], Number(dims), 'layernorm-truncate'), expected)).toBeLessThan(1e-5);
      }
    }
  });

  it('applies the task of an alias when the request names none', async () => {
    const c = golden.cases.find((x) => x.task_type === 'search_query')!;
    const { vectors } = await embedder.embed('tiny-bert-search_query', [{ kind: 'text', text: c.text }]);
    expect(maxAbsDiff(vectors[0], c.embedding)).toBeLessThan(1e-5);
  });

  it('gives the golden vector for the golden input_ids sent as tokens', async () => {
    const c = golden.cases[1];
    const { vectors, tokens } = await embedder.embed('tiny-bert', [{ kind: 'tokens', ids: c.input_ids }]);
    expect(tokens).toEqual([c.input_ids.length]);
    expect(maxAbsDiff(vectors[0], c.embedding)).toBeLessThan(1e-5);
  });

  it('returns the same vectors for all cases batched and padded (submitted concurrently) as one at a time, within 1e-6', async () => {
    const singles: Float32Array[] = [];
    for (const c of golden.cases) {
      singles.push((await embedder.embed('tiny-bert', [{ kind: 'text', text: c.text }], { taskType: c.task_type })).vectors[0]);
    }
    const before = embedder.stats()['tiny-bert'].batches;
    const concurrent = await Promise.all(
      golden.cases.map((c) => embedder.embed('tiny-bert', [{ kind: 'text', text: c.text }], { taskType: c.task_type })),
    );
    const stats = embedder.stats()['tiny-bert'];
    // Every case arrived within the wait window: fewer batches than requests, so padding was exercised.
    expect(stats.batches - before).toBeLessThan(golden.cases.length);
    expect(Math.max(...stats.lastBatchSizes)).toBeGreaterThan(1);
    concurrent.forEach((r, i) => expect(maxAbsDiff(r.vectors[0], singles[i])).toBeLessThan(1e-6));
  });

  it('returns one request of many inputs in input order, equal to single runs', async () => {
    const cases = golden.cases.filter((c) => c.task_type === 'clustering');
    const { vectors, tokens } = await embedder.embed(
      'tiny-bert-clustering',
      cases.map((c) => ({ kind: 'text', text: c.text })),
    );
    expect(tokens).toEqual(cases.map((c) => c.input_ids.length));
    vectors.forEach((v, i) => expect(maxAbsDiff(v, cases[i].embedding)).toBeLessThan(1e-5));
  });

  it('truncates a long input to 128 tokens with [SEP] last', async () => {
    const text = 'word '.repeat(400);
    const { tokens, vectors } = await embedder.embed('tiny-bert', [{ kind: 'text', text }]);
    expect(tokens).toEqual([128]);
    expect(vectors[0]).toHaveLength(64);
  });

  it('rejects token ids outside the vocabulary with a 400 naming input', async () => {
    const err = await embedder.embed('tiny-bert', [{ kind: 'tokens', ids: [5, 4000] }]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DomainError);
    expect(err).toMatchObject({ kind: 'invalid_input', param: 'input' });
  });

  it('answers an unknown model with 404 model_not_found', async () => {
    await expect(embedder.embed('nope', [{ kind: 'text', text: 'x' }])).rejects.toMatchObject({ kind: 'model_not_found', code: 'model_not_found' });
  });

  it('is ready while its workers live', async () => {
    expect(await embedder.ready()).toBe(true);
  });
});

describe('OnnxEmbedder under overload', () => {
  it('refuses as overloaded (with a retry hint) once its queue is full and serves what it queued', async () => {
    const embedder = await createOnnxEmbedder({ modelDirs: [MODEL_DIR], device: 'cpu', threads: 1, maxQueue: 2, maxWaitMs: 300, maxBatchTokens: 100_000 });
    try {
      const outcomes = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) => embedder.embed('tiny-bert', [{ kind: 'text', text: `text ${i}` }])),
      );
      const served = outcomes.filter((o) => o.status === 'fulfilled');
      const refused = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
      expect(served).toHaveLength(2);
      expect(refused).toHaveLength(8);
      for (const r of refused) {
        expect(r.reason).toBeInstanceOf(DomainError);
        expect(r.reason).toMatchObject({ kind: 'overloaded', details: { retryAfterSeconds: expect.any(Number) } });
      }
      expect(embedder.stats()['tiny-bert']).toMatchObject({ rejectedFull: 8, embeddings: 2, queueDepth: 0 });
    } finally {
      await embedder.close();
    }
  });
});

describe('createOnnxEmbedder start-up errors', () => {
  it('refuses device cuda on a machine without the CUDA provider, saying what to install (no CPU fall back)', async () => {
    const err = await createOnnxEmbedder({ modelDirs: [MODEL_DIR], device: 'cuda' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    const message = (err as Error).message;
    expect(message).toMatch(/CUDA execution provider/);
    expect(message).toMatch(/ONNXRUNTIME_NODE_INSTALL=cuda12/);
    expect(message).toMatch(/cuDNN 9/);
    expect(message).toMatch(/LD_LIBRARY_PATH/);
  });

  it('names the missing file of a broken model directory', async () => {
    await expect(createOnnxEmbedder({ modelDirs: ['/nonexistent/model'], device: 'cpu' })).rejects.toThrow(/missing tokenizer\.json/);
  });
});
