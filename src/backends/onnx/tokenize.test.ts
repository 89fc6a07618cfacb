import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Tokenizer } from '@huggingface/tokenizers';
import { describe, expect, it, vi } from 'vitest';
import { DomainError } from '../../core/errors.js';
import type { TaskType } from '../../core/types.js';
import { TextTokenizer, taskPrefix } from './tokenize.js';
import { NOMIC_PROMPTS } from '../../testing/model-fixtures.js';

const MODEL_DIR = fileURLToPath(new URL('../../../test/fixtures/tiny-bert', import.meta.url));
const source = {
  tokenizerJson: readFileSync(`${MODEL_DIR}/tokenizer.json`, 'utf8'),
  tokenizerConfigJson: readFileSync(`${MODEL_DIR}/tokenizer_config.json`, 'utf8'),
  maxTokens: 128,
  vocabSize: 4000,
  prompts: NOMIC_PROMPTS,
};
const golden = JSON.parse(readFileSync(`${MODEL_DIR}/golden-public.json`, 'utf8')) as {
  cases: { text: string; task_type: TaskType; input_ids: number[] }[];
};
const CLS = 2;
const SEP = 3;

describe('TextTokenizer', () => {
  const tokenizer = new TextTokenizer(source);

  it('reproduces the golden input_ids of every case exactly', () => {
    for (const c of golden.cases) {
      expect(tokenizer.encodeText(c.text, c.task_type)).toEqual(c.input_ids);
    }
  });

  it('puts the task prompt the directory declares before the text, and none where it declares none', () => {
    expect(taskPrefix('search_query', NOMIC_PROMPTS)).toBe('search_query: ');
    expect(taskPrefix(null, NOMIC_PROMPTS)).toBe('');
    expect(taskPrefix('search_query', {})).toBe('');
    const plain = new TextTokenizer({ ...source, prompts: undefined });
    expect(plain.encodeText('hello', 'search_query')).toEqual(plain.encodeText('hello', null));
    const query = tokenizer.encodeText('hello', 'search_query');
    const bare = tokenizer.encodeText('hello', null);
    expect(query.length).toBeGreaterThan(bare.length);
    expect(query.slice(-2)).toEqual(bare.slice(-2));
  });

  it('truncates to 128 tokens keeping [CLS] first and [SEP] last', () => {
    const ids = tokenizer.encodeText('lorem ipsum dolor '.repeat(200), 'search_document');
    expect(ids).toHaveLength(128);
    expect(ids[0]).toBe(CLS);
    expect(ids[127]).toBe(SEP);
    expect(ids.filter((id) => id === SEP)).toHaveLength(1);
  });

  it('gives the same ids for a huge text as tokenising all of it and truncating', () => {
    const long = golden.cases.at(-1)!.text;
    const huge = `${long} `.repeat(300);
    const ids = tokenizer.encodeText(huge, 'search_document');
    // Reference: a tokenizer that cannot cut (limit far above the text's length), truncated by hand.
    const full = new TextTokenizer({ ...source, maxTokens: 1_000_000 }).encodeText(huge, 'search_document');
    expect(full.length).toBeGreaterThan(10_000);
    expect(ids).toEqual([...full.slice(0, 127), SEP]);
  });

  it('tokenises only the head of a megabyte text', () => {
    const encode = vi.spyOn(Tokenizer.prototype, 'encode');
    try {
      const ids = tokenizer.encodeText('alpha beta gamma delta '.repeat(50_000), null);
      expect(ids).toHaveLength(128);
      const texts = (encode.mock.calls as unknown as [string][]).map(([text]) => text);
      const longest = Math.max(...texts.map((t) => t.length));
      expect(longest).toBeLessThan(128 * 8 + 20);
    } finally {
      encode.mockRestore();
    }
  });

  it('frames bare token ids with [CLS] ... [SEP] and adds no prefix', () => {
    expect(tokenizer.encodeTokens([100, 200, 300])).toEqual([CLS, 100, 200, 300, SEP]);
  });

  it('takes token ids already framed as they are, so framed and bare ids agree', () => {
    expect(tokenizer.encodeTokens([CLS, 100, 200, SEP])).toEqual([CLS, 100, 200, SEP]);
    expect(tokenizer.encodeTokens([CLS, 100, 200])).toEqual([CLS, 100, 200, SEP]);
    const c = golden.cases[0];
    expect(tokenizer.encode({ kind: 'tokens', ids: c.input_ids }, 'search_query')).toEqual(c.input_ids);
  });

  it('truncates long token inputs like text, [SEP] last', () => {
    const ids = tokenizer.encodeTokens(Array.from({ length: 500 }, (_, i) => 10 + i));
    expect(ids).toHaveLength(128);
    expect(ids[0]).toBe(CLS);
    expect(ids[1]).toBe(10);
    expect(ids[127]).toBe(SEP);
  });

  it('rejects ids outside the vocabulary or not integers with a 400', () => {
    for (const bad of [[4000], [-1], [1.5]]) {
      const err = (() => {
        try {
          tokenizer.encodeTokens(bad);
        } catch (e) {
          return e;
        }
      })();
      expect(err).toBeInstanceOf(DomainError);
      expect(err).toMatchObject({ kind: 'invalid_input', param: 'input' });
    }
  });
});
