import { cp, mkdtemp, rm, writeFile, appendFile, rename } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadModelDir, resolveMaxTokens } from './model-dir.js';

const FIXTURE = fileURLToPath(new URL('../../../test/fixtures/tiny-bert', import.meta.url));

describe('loadModelDir', () => {
  let root: string;
  let dir: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'model-dir-'));
    dir = join(root, 'nomic-embed-text-v1.5');
    await cp(FIXTURE, dir, { recursive: true });
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('names the model after the directory and reads its shape', async () => {
    const m = await loadModelDir(dir);
    expect(m).toMatchObject({ id: 'nomic-embed-text-v1.5', hiddenSize: 64, vocabSize: 4000, maxTokens: 128 });
    expect(m.onnxPath).toBe(join(dir, 'onnx', 'model.onnx'));
    expect(m.version).toMatch(/^[0-9a-f]{12}$/);
  });

  it('offers a plain BERT directory (no prompts declared) with no task aliases and no prefix', async () => {
    const m = await loadModelDir(dir);
    expect(m.prompts).toEqual({});
    expect(m.specs.map((s) => [s.id, s.defaultTaskType])).toEqual([['nomic-embed-text-v1.5', null]]);
  });

  it('offers exactly the prompts config_sentence_transformers.json declares, one alias each, sharing one cacheModel', async () => {
    await writeFile(join(dir, 'config_sentence_transformers.json'), JSON.stringify({ prompts: { query: 'query: ', passage: 'passage: ', other: 'ignored: ' }, default_prompt_name: null }));
    const m = await loadModelDir(dir);
    expect(m.prompts).toEqual({ search_query: 'query: ', search_document: 'passage: ' });
    expect(m.specs.map((s) => [s.id, s.defaultTaskType])).toEqual([
      ['nomic-embed-text-v1.5', 'search_document'],
      ['nomic-embed-text-v1.5-search_document', 'search_document'],
      ['nomic-embed-text-v1.5-search_query', 'search_query'],
    ]);
    expect(new Set(m.specs.map((s) => s.cacheModel))).toEqual(new Set(['nomic-embed-text-v1.5']));
    expect(new Set(m.specs.map((s) => s.version))).toEqual(new Set([m.version]));
    // The prompts are part of what the model sees: other prompts, other version.
    const before = m.version;
    await writeFile(join(dir, 'config_sentence_transformers.json'), JSON.stringify({ prompts: { query: 'q: ' } }));
    const after = await loadModelDir(dir);
    expect(after.version).not.toBe(before);
    expect(after.specs.map((s) => [s.id, s.defaultTaskType])).toEqual([
      ['nomic-embed-text-v1.5', null],
      ['nomic-embed-text-v1.5-search_query', 'search_query'],
    ]);
  });

  it('reads the task prefixes a model card writes (nomic’s README) where sentence-transformers declares none', async () => {
    await writeFile(join(dir, 'config_sentence_transformers.json'), JSON.stringify({ prompts: {}, default_prompt_name: null }));
    await writeFile(join(dir, 'README.md'), "Prefix each text: `search_query: ` for questions, `search_document: ` for passages; also 'clustering: ' and 'classification: '.");
    const m = await loadModelDir(dir);
    expect(m.specs.map((s) => [s.id, s.defaultTaskType])).toEqual([
      ['nomic-embed-text-v1.5', 'search_document'],
      ['nomic-embed-text-v1.5-search_document', 'search_document'],
      ['nomic-embed-text-v1.5-search_query', 'search_query'],
      ['nomic-embed-text-v1.5-clustering', 'clustering'],
      ['nomic-embed-text-v1.5-classification', 'classification'],
    ]);
    expect(m.prompts.search_query).toBe('search_query: ');
  });

  it('keeps the version for the same files and changes it when the weights change', async () => {
    const before = (await loadModelDir(dir)).version;
    expect((await loadModelDir(dir)).version).toBe(before);
    await appendFile(join(dir, 'onnx', 'model.onnx'), Buffer.from([0]));
    expect((await loadModelDir(dir)).version).not.toBe(before);
  });

  it('changes the version when the tokenizer or the token limit changes', async () => {
    const before = (await loadModelDir(dir)).version;
    expect((await loadModelDir(dir, { maxSeqLength: 64 })).version).not.toBe(before);
    await appendFile(join(dir, 'tokenizer.json'), '\n');
    expect((await loadModelDir(dir)).version).not.toBe(before);
  });

  it('picks a quantized variant by option and says which file is missing', async () => {
    await expect(loadModelDir(dir, { variant: 'quantized' })).rejects.toThrow(/missing onnx\/model_quantized\.onnx/);
    await rename(join(dir, 'onnx', 'model.onnx'), join(dir, 'onnx', 'model_quantized.onnx'));
    expect((await loadModelDir(dir, { variant: 'quantized' })).onnxPath).toBe(join(dir, 'onnx', 'model_quantized.onnx'));
    await expect(loadModelDir(dir)).rejects.toThrow(/missing onnx\/model\.onnx/);
  });

  it('names a missing tokenizer.json or config.json', async () => {
    await rm(join(dir, 'tokenizer.json'));
    await expect(loadModelDir(dir)).rejects.toThrow(/missing tokenizer\.json/);
    await cp(join(FIXTURE, 'tokenizer.json'), join(dir, 'tokenizer.json'));
    await rm(join(dir, 'config.json'));
    await expect(loadModelDir(dir)).rejects.toThrow(/missing config\.json/);
  });

  it('reports a malformed file by name and field', async () => {
    await writeFile(join(dir, 'sentence_bert_config.json'), '{"max_seq_length": "long"}');
    await expect(loadModelDir(dir)).rejects.toThrow(/sentence_bert_config\.json.*max_seq_length/s);
    await writeFile(join(dir, 'sentence_bert_config.json'), '{');
    await expect(loadModelDir(dir)).rejects.toThrow(/sentence_bert_config\.json: not valid JSON/);
  });

  it('reads nomic_bert configs (n_embd) and refuses non-mean pooling', async () => {
    await writeFile(join(dir, 'config.json'), JSON.stringify({ n_embd: 64, n_positions: 8192, vocab_size: 4000 }));
    expect((await loadModelDir(dir)).hiddenSize).toBe(64);
    await writeFile(join(dir, '1_Pooling', 'config.json'), JSON.stringify({ pooling_mode_cls_token: true, pooling_mode_mean_tokens: false }));
    await expect(loadModelDir(dir)).rejects.toThrow(/only mean pooling/);
  });
});

describe('resolveMaxTokens', () => {
  it('prefers sentence-transformers max_seq_length, then the tokenizer, capped by positions and the override', () => {
    expect(resolveMaxTokens(8192, 8192, 8192, undefined)).toBe(8192);
    expect(resolveMaxTokens(512, undefined, 256, undefined)).toBe(256);
    expect(resolveMaxTokens(512, undefined, 1e30, undefined)).toBe(512);
    expect(resolveMaxTokens(256, 512, undefined, undefined)).toBe(256);
    expect(resolveMaxTokens(8192, 8192, undefined, 512)).toBe(512);
    expect(resolveMaxTokens(undefined, undefined, undefined, undefined)).toBe(512);
  });
});
