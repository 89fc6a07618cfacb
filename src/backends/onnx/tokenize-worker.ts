/**
 * Worker entry for tokenisation: @huggingface/tokenizers is pure JS and costs ~0.1 ms per short
 * text here (2048 inputs: ~200 ms), too long to run on the event loop that serves HTTP.
 */
import type { EmbedInput, TaskType } from '../../core/types.js';
import { pack, type PackedIds } from './packed-ids.js';
import { TextTokenizer, type TokenizerSource } from './tokenize.js';
import { serveWorker } from './worker-rpc.js';

export interface TokenizeWorkerData {
  /** Tokenizer sources by base model id. */
  models: Record<string, TokenizerSource>;
}

export interface TokenizeRequest {
  model: string;
  inputs: EmbedInput[];
  taskType: TaskType | null;
}

serveWorker<TokenizeWorkerData, TokenizeRequest, PackedIds, null>(async ({ models }) => {
  const tokenizers = new Map(Object.entries(models).map(([id, source]) => [id, new TextTokenizer(source)]));
  return {
    info: null,
    handle: ({ model, inputs, taskType }) => {
      const tokenizer = tokenizers.get(model);
      if (!tokenizer) throw new Error(`tokenizer worker: unknown model ${model}`);
      const value = pack(inputs.map((input) => tokenizer.encode(input, taskType)));
      return { value, transfer: [value.ids.buffer, value.lengths.buffer] };
    },
  };
});
