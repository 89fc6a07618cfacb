/**
 * The local-model backend: one or more model directories served through onnxruntime-node.
 * Per request: tokenise in the worker pool, queue in the model's batcher, which runs batches in
 * the model's session worker; the event loop only routes. Vectors come back full-dimension and
 * L2-normalised; the core derives `dimensions`.
 */
import { availableParallelism } from 'node:os';
import type { Logger } from 'pino';
import { DomainError, modelNotFound } from '../../core/errors.js';
import type { EmbedInput, EmbedOptions, EmbedResult, Embedder, ModelSpec } from '../../core/types.js';
import { Batcher, type BatcherConfig, type BatcherStats, type PaddingRule } from './batcher.js';
import { loadModelDir, type ModelDir } from './model-dir.js';
import type { Device } from './session.js';
import { WorkerRunner } from './session-client.js';
import { TokenizerPool } from './tokenize-pool.js';

export interface OnnxEmbedderOptions {
  /** Model directories; each is served under its basename (+ task aliases). */
  modelDirs: string[];
  device: Device;
  deviceId?: number;
  /** ORT intra-op threads per model; 0 or absent: ORT's default (one per physical core). */
  threads?: number;
  /** ONNX variant in every dir, e.g. `quantized` for onnx/model_quantized.onnx. */
  variant?: string;
  /** Cap on the per-input token limit (the model's own limit otherwise). */
  maxSeqLength?: number;
  /** Padded tokens per batch. Default: 4096 on CPU, 131072 on CUDA (256 × 512). */
  maxBatchTokens?: number;
  /** Sequences per batch; 1 turns batching off. Default: 64 on CPU, 256 on CUDA. */
  maxBatchSize?: number;
  /**
   * While single-text (priority-lane) requests came in the last 2 s, bulk batches are cut to the
   * size of the recent priority batches, at most this many padded tokens, so a single text waits
   * for about its own cost. Default on CPU: the model's token limit (one longest input); 0 (the
   * default on CUDA, where batches take milliseconds): no cap.
   */
  interactiveBulkTokens?: number;
  /**
   * How much padding a batch may carry (see BatcherConfig.padding). Default on CPU: a tenth of
   * its padded tokens, any amount under 256 padded tokens; null (the default on CUDA): no rule.
   */
  padding?: PaddingRule | null;
  /** Wait for company before a partial batch runs. Default 2 ms. */
  maxWaitMs?: number;
  /** Queued inputs per model before 503. Default 10 000. */
  maxQueue?: number;
  /** Per-request deadline before 503. Default 60 s. */
  timeoutMs?: number;
  /** Tokenizer worker threads. Default 1 on CPU (the model is the bottleneck); on CUDA all cores
   * but three, since a GPU embeds ~2M tokens/s and one thread tokenises ~0.3M. */
  tokenizerThreads?: number;
  /** Sessions per model fed by its one queue. Default 1 on CPU, 2 on CUDA (the GPU is not idle
   * while a batch's inputs and outputs cross). */
  sessions?: number;
  logger?: Logger;
}

/** One loaded model: its description, its session and its queue. */
interface LoadedModel {
  dir: ModelDir;
  runners: WorkerRunner[];
  batcher: Batcher;
}

const CPU_PADDING: PaddingRule = { maxShare: 0.1, freeTokens: 256 };

export async function createOnnxEmbedder(options: OnnxEmbedderOptions): Promise<OnnxEmbedder> {
  if (options.modelDirs.length === 0) throw new Error('onnx backend: no model directory given');
  const dirs = await Promise.all(
    options.modelDirs.map((d) => loadModelDir(d, { variant: options.variant, maxSeqLength: options.maxSeqLength })),
  );
  const duplicate = dirs.find((d, i) => dirs.findIndex((o) => o.id === d.id) !== i);
  if (duplicate) throw new Error(`onnx backend: two model directories are named ${duplicate.id}`);

  const cuda = options.device === 'cuda';
  const base: BatcherConfig = {
    maxBatchTokens: options.maxBatchTokens ?? (cuda ? 131_072 : 4_096),
    maxBatchSize: options.maxBatchSize ?? (cuda ? 256 : 64),
    maxWaitMs: options.maxWaitMs ?? 2,
    maxQueue: options.maxQueue ?? 10_000,
    timeoutMs: options.timeoutMs ?? 60_000,
    // bench/local-bert.mjs (BERT-base, 16 concurrent single texts of 10-300 words, 2 cores): vs
    // raw ORT on length-sorted batches 0.60x with no rule, 0.81x at 0.2, 0.92-0.98x at 0.1.
    padding: options.padding === undefined ? (cuda ? undefined : CPU_PADDING) : (options.padding ?? undefined),
  };
  const tokenizerThreads = options.tokenizerThreads || (cuda ? Math.max(1, availableParallelism() - 3) : 1);
  const sessions = options.sessions || (cuda ? 2 : 1);
  const sessionConfig = { device: options.device, deviceId: options.deviceId, threads: options.threads || undefined };

  const loaded: LoadedModel[] = [];
  let pool: TokenizerPool | undefined;
  try {
    const sources = dirs.map(({ id, tokenizerJson, tokenizerConfigJson, maxTokens, vocabSize, prompts }) => [
      id,
      { tokenizerJson, tokenizerConfigJson, maxTokens, vocabSize, prompts },
    ]);
    pool = await TokenizerPool.start(Object.fromEntries(sources), tokenizerThreads);
    for (const dir of dirs) {
      const runners: WorkerRunner[] = [];
      try {
        const onEvent: Parameters<typeof WorkerRunner.start>[2] = ({ event, err, attempt }) => {
          const log = options.logger;
          if (event === 'restarted') log?.info({ model: dir.id, attempt }, 'local model worker restarted');
          else log?.error({ err, model: dir.id, attempt }, event === 'died' ? 'local model worker died; restarting it' : 'restarting the local model worker failed; trying again');
        };
        for (let i = 0; i < sessions; i++) runners.push(await WorkerRunner.start(dir.onnxPath, sessionConfig, onEvent));
      } catch (err) {
        await Promise.allSettled(runners.map((r) => r.close()));
        throw err;
      }
      // A budget below one maximal input would leave every long input running alone.
      const interactiveBulkTokens = options.interactiveBulkTokens ?? (cuda ? 0 : dir.maxTokens);
      const batcher = new Batcher(runners, {
        ...base,
        maxBatchTokens: Math.max(base.maxBatchTokens, dir.maxTokens),
        interactiveBulkTokens: interactiveBulkTokens > 0 ? interactiveBulkTokens : undefined,
      });
      loaded.push({ dir, runners, batcher });
      options.logger?.info(
        { model: dir.id, version: dir.version, onnx: dir.onnxPath, dimensions: dir.hiddenSize, maxTokens: dir.maxTokens, sessions, tokenizerThreads, ...runners[0].info },
        'local model loaded',
      );
    }
  } catch (err) {
    await Promise.allSettled([pool?.close(), ...loaded.flatMap((m) => m.runners.map((r) => r.close()))]);
    throw err;
  }
  return new OnnxEmbedder(loaded, pool);
}

export class OnnxEmbedder implements Embedder {
  readonly name = 'onnx';
  /** Spec id (base or alias) -> the spec and the model serving it. */
  private readonly byId = new Map<string, { spec: ModelSpec; model: LoadedModel }>();

  constructor(
    private readonly loaded: LoadedModel[],
    private readonly pool: TokenizerPool,
  ) {
    for (const model of loaded) for (const spec of model.dir.specs) this.byId.set(spec.id, { spec, model });
  }

  models(): ModelSpec[] {
    return [...this.byId.values()].map((m) => m.spec);
  }

  async embed(model: string, inputs: EmbedInput[], options: EmbedOptions = {}): Promise<EmbedResult> {
    const entry = this.byId.get(model);
    if (!entry) throw modelNotFound(model);
    const taskType = options.taskType ?? entry.spec.defaultTaskType;
    const arrived = entry.model.batcher.expect();
    try {
      const ids = await this.pool.encode(entry.model.dir.id, inputs, taskType);
      const pending = entry.model.batcher.submit(ids);
      arrived();
      const vectors = await pending;
      return { vectors, tokens: ids.map((s) => s.length) };
    } catch (err) {
      arrived();
      if (err instanceof DomainError) throw err;
      // The runtime's own text goes to the log (as the cause), not to the client.
      throw new DomainError('internal', `local model ${model} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }

  async ready(): Promise<boolean> {
    return this.pool.alive && this.loaded.every((m) => m.runners.every((r) => r.alive));
  }

  /** Test hook: ends every session worker as a crash would (they are restarted with backoff). */
  async crashWorkers(): Promise<void> {
    await Promise.all(this.loaded.flatMap((m) => m.runners.map((r) => r.crash())));
  }

  /** Queue and batch counters per base model id, for /metrics. */
  stats(): Record<string, BatcherStats> {
    return Object.fromEntries(this.loaded.map((m) => [m.dir.id, m.batcher.stats()]));
  }

  async close(): Promise<void> {
    for (const m of this.loaded) m.batcher.close();
    await Promise.allSettled([this.pool.close(), ...this.loaded.flatMap((m) => m.runners.map((r) => r.close()))]);
  }
}
