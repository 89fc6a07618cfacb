/**
 * Reads a local model directory laid out like a Hugging Face repo (nomic-embed-text-v1.5 and
 * kin) and describes it: where the files are, the model's shape, its cache version, its task
 * prompts, and the ModelSpecs (base id + one alias per declared task) the core serves it under.
 */
import { createHash } from 'node:crypto';
import { open, readFile, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { z } from 'zod';
import { TASK_TYPES, type ModelSpec, type TaskType } from '../../core/types.js';

/** Bumped when our own pipeline (prefixes, truncation, pooling) changes the vectors. v2: prompts from the directory. */
const PIPELINE_VERSION = 'onnx-mean-l2-v2';
/** Hugging Face writes a huge sentinel in model_max_length when the tokenizer has no limit. */
const UNSET_MAX_LENGTH = 1_000_000;
const MB = 1024 * 1024;

const configSchema = z.object({
  // BERT names it hidden_size; nomic_bert (GPT-2 style config) names it n_embd.
  hidden_size: z.number().int().positive().optional(),
  n_embd: z.number().int().positive().optional(),
  vocab_size: z.number().int().positive().optional(),
  max_position_embeddings: z.number().int().positive().optional(),
  n_positions: z.number().int().positive().optional(),
});
const tokenizerConfigSchema = z.object({ model_max_length: z.number().positive().optional() });
const sentenceBertConfigSchema = z.object({ max_seq_length: z.number().int().positive().optional() });
const poolingConfigSchema = z.object({
  word_embedding_dimension: z.number().int().positive().optional(),
  pooling_mode_mean_tokens: z.boolean().optional(),
  pooling_mode_cls_token: z.boolean().optional(),
  pooling_mode_max_tokens: z.boolean().optional(),
});
/** sentence-transformers' own prompt declaration (what `encode(prompt_name=...)` prepends). */
const sentenceTransformersConfigSchema = z.object({
  prompts: z.record(z.string(), z.string()).optional(),
  default_prompt_name: z.string().nullable().optional(),
});
/** sentence-transformers prompt names that mean one of our task types. */
const PROMPT_NAME_TASKS: Record<string, TaskType> = { query: 'search_query', document: 'search_document', passage: 'search_document' };
const tokenizerJsonSchema = z.object({ model: z.object({ type: z.string().optional() }).loose() }).loose();

export interface ModelDirOptions {
  /** ONNX variant: undefined for `model.onnx`, e.g. `quantized` for `model_quantized.onnx`. */
  variant?: string;
  /** Lower the per-input token limit below the model's (long sequences are slow on CPU). */
  maxSeqLength?: number;
}

/** Everything the backend needs to know about one model directory. */
export type TaskPrompts = Partial<Record<TaskType, string>>;

export interface ModelDir {
  /** Base model id: the directory's basename. */
  id: string;
  dir: string;
  onnxPath: string;
  /** tokenizer.json and tokenizer_config.json, raw, so workers can parse their own copies. */
  tokenizerJson: string;
  tokenizerConfigJson: string;
  /** Full output dimension. */
  hiddenSize: number;
  /** The text put before an input for each task the directory declares; empty: no prefixes, no task aliases. */
  prompts: TaskPrompts;
  /** Rows of the embedding matrix: valid token ids are [0, vocabSize). Null when unknown. */
  vocabSize: number | null;
  /** Per-input token limit, special tokens included. */
  maxTokens: number;
  version: string;
  specs: ModelSpec[];
}

/** Loads and validates a model directory; errors name the file that is missing or wrong. */
export async function loadModelDir(dirPath: string, options: ModelDirOptions = {}): Promise<ModelDir> {
  const dir = resolve(dirPath);
  const id = basename(dir);
  const tokenizerJson = await readRequired(dir, 'tokenizer.json');
  parseJson(dir, 'tokenizer.json', tokenizerJson, tokenizerJsonSchema);
  const config = parseJson(dir, 'config.json', await readRequired(dir, 'config.json'), configSchema);
  const tokenizerConfigJson = (await readOptional(dir, 'tokenizer_config.json')) ?? '{}';
  const tokenizerConfig = parseJson(dir, 'tokenizer_config.json', tokenizerConfigJson, tokenizerConfigSchema);
  const sbertText = await readOptional(dir, 'sentence_bert_config.json');
  const sbert = sbertText ? parseJson(dir, 'sentence_bert_config.json', sbertText, sentenceBertConfigSchema) : {};
  const poolingText = await readOptional(dir, '1_Pooling/config.json');
  const pooling = poolingText ? parseJson(dir, '1_Pooling/config.json', poolingText, poolingConfigSchema) : {};
  if (pooling.pooling_mode_cls_token || pooling.pooling_mode_max_tokens || pooling.pooling_mode_mean_tokens === false) {
    throw new Error(`${join(dir, '1_Pooling/config.json')}: only mean pooling is supported`);
  }

  const hiddenSize = config.hidden_size ?? config.n_embd ?? pooling.word_embedding_dimension;
  if (!hiddenSize) {
    throw new Error(`${join(dir, 'config.json')}: no hidden_size (or n_embd) to tell the embedding dimension`);
  }
  const maxTokens = resolveMaxTokens(
    config.max_position_embeddings ?? config.n_positions,
    sbert.max_seq_length,
    tokenizerConfig.model_max_length,
    options.maxSeqLength,
  );
  const onnxPath = await findOnnx(dir, options.variant);
  const { prompts, defaultTask } = await readPrompts(dir);
  const version = await modelVersion(onnxPath, [tokenizerJson, tokenizerConfigJson, JSON.stringify(prompts)], maxTokens);
  const created = Math.floor((await stat(onnxPath)).mtimeMs / 1000);
  return {
    id,
    dir,
    onnxPath,
    tokenizerJson,
    tokenizerConfigJson,
    hiddenSize,
    prompts,
    vocabSize: config.vocab_size ?? null,
    maxTokens,
    version,
    specs: modelSpecs({ id, version, dimensions: hiddenSize, maxInputTokens: maxTokens, created }, prompts, defaultTask),
  };
}

/**
 * The task prompts a directory declares, from its own files only (a plain BERT declares none,
 * and a guessed prefix would change its vectors):
 * 1. config_sentence_transformers.json `prompts` (names that are task types, or query/document/passage);
 * 2. else the model card (README.md) of a model trained with task prefixes, as nomic's says
 *    `search_query: ` / `search_document: `: each task type the card writes as a prefix.
 * The default task: `default_prompt_name`, else search_document where declared, else none.
 */
export async function readPrompts(dir: string): Promise<{ prompts: TaskPrompts; defaultTask: TaskType | null }> {
  const prompts: TaskPrompts = {};
  const stText = await readOptional(dir, 'config_sentence_transformers.json');
  const st = stText ? parseJson(dir, 'config_sentence_transformers.json', stText, sentenceTransformersConfigSchema) : {};
  const taskOf = (name: string): TaskType | undefined => ((TASK_TYPES as readonly string[]).includes(name) ? (name as TaskType) : PROMPT_NAME_TASKS[name]);
  for (const [name, text] of Object.entries(st.prompts ?? {})) {
    const task = taskOf(name);
    if (task && text.length > 0 && prompts[task] === undefined) prompts[task] = text;
  }
  if (Object.keys(prompts).length === 0) {
    const card = (await readOptional(dir, 'README.md')) ?? '';
    for (const task of TASK_TYPES) if (new RegExp(`\\b${task}: `).test(card)) prompts[task] = `${task}: `;
  }
  const named = st.default_prompt_name ? taskOf(st.default_prompt_name) : undefined;
  const defaultTask = named && prompts[named] !== undefined ? named : prompts.search_document !== undefined ? 'search_document' : null;
  return { prompts, defaultTask };
}

/**
 * The base id (its default task, when the directory declares one) plus one alias per declared
 * task. All share the base id as cacheModel, so one text under two tasks gives two vectors under
 * one cacheModel: the cache key must carry the effective task type (the prefix is part of what
 * the model sees).
 */
export function modelSpecs(
  base: {
    id: string;
    version: string;
    dimensions: number;
    maxInputTokens: number;
    created: number;
  },
  prompts: TaskPrompts,
  defaultTask: TaskType | null,
): ModelSpec[] {
  const spec = (id: string, task: TaskType | null): ModelSpec => ({
    id,
    cacheModel: base.id,
    version: base.version,
    dimensions: base.dimensions,
    maxInputTokens: base.maxInputTokens,
    dimensionsMethod: 'layernorm-truncate',
    defaultTaskType: task,
    ownedBy: 'local',
    created: base.created,
  });
  return [spec(base.id, defaultTask), ...TASK_TYPES.filter((t) => prompts[t] !== undefined).map((t) => spec(`${base.id}-${t}`, t))];
}

/** sentence-transformers' max_seq_length wins, then the tokenizer's, capped by the positions. */
export function resolveMaxTokens(
  positions: number | undefined,
  maxSeqLength: number | undefined,
  modelMaxLength: number | undefined,
  override: number | undefined,
): number {
  const tokenizerLimit = modelMaxLength !== undefined && modelMaxLength < UNSET_MAX_LENGTH ? modelMaxLength : undefined;
  const candidates = [maxSeqLength ?? tokenizerLimit ?? positions ?? 512, positions, override];
  return Math.min(...candidates.filter((n): n is number => n !== undefined));
}

/**
 * A short content hash: changing weights, tokenizer or truncation changes it, so cached vectors
 * are invalidated. Hashes the ONNX file's size plus its first and last MB, not all of it:
 * a 500 MB model would otherwise cost seconds at every start-up.
 */
export async function modelVersion(onnxPath: string, texts: string[], maxTokens: number): Promise<string> {
  const hash = createHash('sha256').update(PIPELINE_VERSION).update(`\0${maxTokens}\0`);
  const file = await open(onnxPath, 'r');
  try {
    const { size } = await file.stat();
    hash.update(`${size}\0`);
    const head = Buffer.alloc(Math.min(MB, size));
    await file.read(head, 0, head.length, 0);
    hash.update(head);
    const tail = Buffer.alloc(Math.min(MB, size));
    await file.read(tail, 0, tail.length, size - tail.length);
    hash.update(tail);
  } finally {
    await file.close();
  }
  for (const text of texts) hash.update('\0').update(text);
  return hash.digest('hex').slice(0, 12);
}

async function findOnnx(dir: string, variant: string | undefined): Promise<string> {
  const name = variant ? `model_${variant}.onnx` : 'model.onnx';
  const candidates = [join('onnx', name), name];
  for (const candidate of candidates) {
    const path = join(dir, candidate);
    if (await isFile(path)) return path;
  }
  throw new Error(`model directory ${dir}: missing ${candidates.join(' (or ')})`);
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

async function readRequired(dir: string, name: string): Promise<string> {
  const text = await readOptional(dir, name);
  if (text === undefined) throw new Error(`model directory ${dir}: missing ${name}`);
  return text;
}

async function readOptional(dir: string, name: string): Promise<string | undefined> {
  try {
    return await readFile(join(dir, name), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function parseJson<T>(dir: string, name: string, text: string, schema: z.ZodType<T>): T {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Error(`${join(dir, name)}: not valid JSON (${(err as Error).message})`);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new Error(`${join(dir, name)}: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}
