/**
 * Tokenisation off the event loop: a few tokenize-worker.ts threads, each holding every
 * model's tokenizer. A big request is cut into chunks spread over the workers, so 2048 inputs
 * are tokenised in parallel and the main thread only routes messages.
 */
import type { EmbedInput, TaskType } from '../../core/types.js';
import { unpack, type PackedIds, type TokenIds } from './packed-ids.js';
import type { TokenizerSource } from './tokenize.js';
import type { TokenizeRequest, TokenizeWorkerData } from './tokenize-worker.js';
import { WorkerClient, siblingModule } from './worker-rpc.js';

/** Inputs per message: large enough to amortise a hop (~0.1 ms), small enough to spread. */
const CHUNK_INPUTS = 128;
/** Characters per message, so a few huge texts are spread too. */
const CHUNK_CHARS = 64 * 1024;

type Client = WorkerClient<TokenizeRequest, PackedIds, null>;

export class TokenizerPool {
  private constructor(private readonly workers: Client[]) {}

  static async start(models: Record<string, TokenizerSource>, threads: number): Promise<TokenizerPool> {
    const data: TokenizeWorkerData = { models };
    const url = siblingModule(import.meta.url, 'tokenize-worker');
    const workers = await Promise.all(Array.from({ length: Math.max(1, threads) }, () => WorkerClient.start<TokenizeRequest, PackedIds, null>(url, data)));
    return new TokenizerPool(workers);
  }

  get alive(): boolean {
    return this.workers.some((w) => w.alive);
  }

  /** Ids for every input, in order (see TextTokenizer.encode). */
  async encode(model: string, inputs: EmbedInput[], taskType: TaskType | null): Promise<TokenIds[]> {
    const parts = await Promise.all(chunk(inputs).map((part) => this.pick().call({ model, inputs: part, taskType })));
    return parts.flatMap(unpack);
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.close()));
  }

  /** The least busy live worker. */
  private pick(): Client {
    const live = this.workers.filter((w) => w.alive);
    if (live.length === 0) throw new Error('all tokenizer workers have died');
    return live.reduce((best, w) => (w.inFlight < best.inFlight ? w : best));
  }
}

/** Consecutive slices bounded by CHUNK_INPUTS inputs and CHUNK_CHARS characters. */
export function chunk(inputs: EmbedInput[]): EmbedInput[][] {
  const chunks: EmbedInput[][] = [];
  let current: EmbedInput[] = [];
  let chars = 0;
  for (const input of inputs) {
    const size = input.kind === 'text' ? input.text.length : input.ids.length;
    if (current.length > 0 && (current.length >= CHUNK_INPUTS || chars + size > CHUNK_CHARS)) {
      chunks.push(current);
      current = [];
      chars = 0;
    }
    current.push(input);
    chars += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}
