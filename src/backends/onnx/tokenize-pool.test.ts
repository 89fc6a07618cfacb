import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { EmbedInput } from '../../core/types.js';
import { pack, unpack } from './packed-ids.js';
import { TextTokenizer } from './tokenize.js';
import { TokenizerPool, chunk } from './tokenize-pool.js';

const MODEL_DIR = fileURLToPath(new URL('../../../test/fixtures/tiny-bert', import.meta.url));
const source = {
  tokenizerJson: readFileSync(`${MODEL_DIR}/tokenizer.json`, 'utf8'),
  tokenizerConfigJson: readFileSync(`${MODEL_DIR}/tokenizer_config.json`, 'utf8'),
  maxTokens: 128,
  vocabSize: 4000,
};
const text = (t: string): EmbedInput => ({ kind: 'text', text: t });

describe('pack / unpack', () => {
  it('round-trips sequences, empty ones included', () => {
    const seqs = [[2, 5, 3], [], [7]];
    expect(unpack(pack(seqs)).map((s) => Array.from(s))).toEqual(seqs);
  });
});

describe('chunk', () => {
  it('cuts consecutive slices of at most 128 inputs', () => {
    const parts = chunk(Array.from({ length: 300 }, (_, i) => text(`t${i}`)));
    expect(parts.map((p) => p.length)).toEqual([128, 128, 44]);
    expect(parts.flat().map((x) => (x.kind === 'text' ? x.text : ''))).toEqual(Array.from({ length: 300 }, (_, i) => `t${i}`));
  });

  it('cuts by characters too, and never leaves a slice empty', () => {
    const big = 'x'.repeat(40 * 1024);
    expect(chunk([text(big), text(big), text('a')]).map((p) => p.length)).toEqual([1, 2]);
    expect(chunk([text('x'.repeat(200 * 1024))]).map((p) => p.length)).toEqual([1]);
  });
});

describe('TokenizerPool', () => {
  it('returns the same ids as the tokenizer itself, in input order, across several workers', async () => {
    const pool = await TokenizerPool.start({ m: source }, 2);
    try {
      const inputs: EmbedInput[] = Array.from({ length: 300 }, (_, i) =>
        i % 7 === 0 ? { kind: 'tokens', ids: [10 + i, 20] } : text(`input number ${i} ${'word '.repeat(i % 50)}`),
      );
      const tokenizer = new TextTokenizer(source);
      const got = await pool.encode('m', inputs, 'clustering');
      expect(got.map((ids) => Array.from(ids))).toEqual(inputs.map((x) => tokenizer.encode(x, 'clustering')));
    } finally {
      await pool.close();
    }
  });

  it('carries an invalid_input for a bad token id back from the worker as a DomainError', async () => {
    const pool = await TokenizerPool.start({ m: source }, 1);
    try {
      await expect(pool.encode('m', [{ kind: 'tokens', ids: [99999] }], null)).rejects.toMatchObject({ kind: 'invalid_input', param: 'input' });
      expect(pool.alive).toBe(true);
    } finally {
      await pool.close();
    }
    expect(pool.alive).toBe(false);
  });
});
