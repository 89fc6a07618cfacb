import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OrtRunner } from './session.js';

const TINY_BERT = fileURLToPath(new URL('../../../test/fixtures/tiny-bert/onnx/model.onnx', import.meta.url));

// --- A few lines of protobuf, enough to write small ONNX graphs without Python's onnx package.
const varint = (n: number): number[] => {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 128;
    out.push(byte);
  } while (n > 0);
  return out;
};
const field = (no: number, wire: number) => varint(no * 8 + wire);
const int = (no: number, n: number) => [...field(no, 0), ...varint(n)];
const bytes = (no: number, b: number[]) => [...field(no, 2), ...varint(b.length), ...b];
const str = (no: number, s: string) => bytes(no, [...Buffer.from(s)]);
const INT64 = 7;
const FLOAT = 1;
/** ValueInfoProto: name, tensor type, shape of symbolic (string) or fixed (number) dims. */
const valueInfo = (name: string, elem: number, dims: (string | number)[]) =>
  str(1, name).concat(
    bytes(2, bytes(1, [...int(1, elem), ...bytes(2, dims.flatMap((d) => bytes(1, typeof d === 'string' ? str(2, d) : int(1, d))))])),
  );
const attrInt = (name: string, v: number) => bytes(5, [...str(1, name), ...int(3, v), ...int(20, 2)]);
const attrInts = (name: string, vs: number[]) => bytes(5, [...str(1, name), ...vs.flatMap((v) => int(8, v)), ...int(20, 7)]);
const node = (op: string, inputs: string[], outputs: string[], attrs: number[] = []) =>
  bytes(1, [...inputs.flatMap((i) => str(1, i)), ...outputs.flatMap((o) => str(2, o)), ...str(4, op), ...attrs]);
const model = (graph: number[]) => Buffer.from([...int(1, 7), ...bytes(8, [...str(1, ''), ...int(2, 11)]), ...bytes(7, graph)]);

/**
 * A graph that pools in-graph, like the GPU variant: inputs input_ids and attention_mask only
 * (no token_type_ids), output sentence_embedding [batch, 2] = [sum of real ids, real count].
 */
function pooledGraph(): Buffer {
  return model([
    ...node('Cast', ['attention_mask'], ['m'], attrInt('to', FLOAT)),
    ...node('Cast', ['input_ids'], ['x'], attrInt('to', FLOAT)),
    ...node('Mul', ['x', 'm'], ['xm']),
    ...node('ReduceSum', ['xm'], ['s'], attrInts('axes', [1])),
    ...node('ReduceSum', ['m'], ['c'], attrInts('axes', [1])),
    ...node('Concat', ['s', 'c'], ['sentence_embedding'], attrInt('axis', 1)),
    ...str(2, 'pooled'),
    ...bytes(11, valueInfo('input_ids', INT64, ['batch', 'seq'])),
    ...bytes(11, valueInfo('attention_mask', INT64, ['batch', 'seq'])),
    ...bytes(12, valueInfo('sentence_embedding', FLOAT, ['batch', 2])),
  ]);
}

/** A graph with an input we cannot feed. */
function foreignInputGraph(): Buffer {
  return model([
    ...node('Identity', ['pixel_values'], ['last_hidden_state']),
    ...str(2, 'foreign'),
    ...bytes(11, valueInfo('pixel_values', FLOAT, ['batch', 3])),
    ...bytes(12, valueInfo('last_hidden_state', FLOAT, ['batch', 3])),
  ]);
}

const norm = (v: number[]) => {
  const n = Math.hypot(...v);
  return v.map((x) => Math.fround(x / n));
};

describe('OrtRunner', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ort-graphs-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('feeds the three BERT inputs and pools last_hidden_state; padded batch equals single runs', async () => {
    const runner = await OrtRunner.create(TINY_BERT, { device: 'cpu', threads: 1 });
    try {
      expect(runner.info).toEqual({ inputs: ['input_ids', 'token_type_ids', 'attention_mask'], output: 'last_hidden_state', device: 'cpu' });
      const seqs = [[2, 100, 200, 300, 400, 3], [2, 50, 3], [2, 3]];
      const batched = await runner.run(seqs);
      for (const [i, s] of seqs.entries()) {
        const [single] = await runner.run([s]);
        expect(single).toHaveLength(64);
        for (let d = 0; d < 64; d++) expect(Math.abs(batched[i][d] - single[d])).toBeLessThan(1e-6);
      }
    } finally {
      await runner.close();
    }
  });

  it('reads an in-graph pooled [batch, hidden] output, feeding only the inputs the graph declares', async () => {
    const path = join(dir, 'pooled.onnx');
    await writeFile(path, pooledGraph());
    const runner = await OrtRunner.create(path, { device: 'cpu' });
    try {
      expect(runner.info).toMatchObject({ inputs: ['input_ids', 'attention_mask'], output: 'sentence_embedding' });
      const out = await runner.run([[3, 4], [5]]);
      expect(out.map((v) => [...v])).toEqual([norm([7, 2]), norm([5, 1])]);
    } finally {
      await runner.close();
    }
  });

  it('refuses a graph with inputs it cannot feed, naming them', async () => {
    const path = join(dir, 'foreign.onnx');
    await writeFile(path, foreignInputGraph());
    await expect(OrtRunner.create(path, { device: 'cpu' })).rejects.toThrow(/unsupported model inputs \[pixel_values\]/);
  });

  it('names the file when onnxruntime cannot load it', async () => {
    const path = join(dir, 'garbage.onnx');
    await writeFile(path, 'not a model');
    await expect(OrtRunner.create(path, { device: 'cpu' })).rejects.toThrow(/garbage\.onnx: onnxruntime cannot load the model/);
  });
});
