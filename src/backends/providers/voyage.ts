import { z } from 'zod';
import type { EmbedInput, TaskType } from '../../core/types.js';
import { ProviderEmbedder, endpointScope, joinUrl, texts, type BatchOptions, type BatchResult, type ProviderSetup, type ResolvedProviderModel } from './base.js';
import { invalidResponse } from './errors.js';
import { asString, pick, postJson, type ErrorDialect } from './http.js';

export const VOYAGE_BASE_URL = 'https://api.voyageai.com/v1';

const VoyageEmbedResponse = z.object({
  object: z.literal('list').optional(),
  data: z.array(z.object({ embedding: z.array(z.number()), index: z.number().int().min(0) })),
  model: z.string().optional(),
  usage: z.object({ total_tokens: z.number().int().min(0) }).partial().optional(),
});

/** Voyage's errors are `{"detail": "..."}`. */
export const voyageDialect: ErrorDialect = { message: (body) => asString(pick(body, 'detail')) ?? asString(pick(body, 'message')) };

/** Voyage knows `query` and `document`; other tasks send no input type (Voyage's own default). */
const INPUT_TYPES: Record<TaskType, 'query' | 'document' | undefined> = {
  search_document: 'document',
  search_query: 'query',
  classification: undefined,
  clustering: undefined,
};

/** Voyage AI /v1/embeddings: `input`, `input_type`, `output_dimension`; at most 1000 texts a call. */
export class VoyageEmbedder extends ProviderEmbedder {
  private readonly url: string;

  constructor(
    setup: ProviderSetup,
    private readonly opts: { truncation?: boolean } = {},
  ) {
    super(setup, { kind: 'voyage', maxBatch: 1000, tokenInputs: false, inputTypes: true, defaultTaskType: null }, endpointScope('voyage', setup.baseUrl));
    this.url = joinUrl(setup.baseUrl, 'embeddings');
  }

  protected async callBatch(m: ResolvedProviderModel, inputs: EmbedInput[], o: BatchOptions): Promise<BatchResult> {
    const inputType = o.taskType ? INPUT_TYPES[o.taskType] : undefined;
    const body = {
      model: m.model,
      input: texts(inputs),
      ...(inputType ? { input_type: inputType } : {}),
      ...(o.dimensions ? { output_dimension: o.dimensions } : {}),
      ...(this.opts.truncation !== undefined ? { truncation: this.opts.truncation } : {}),
    };
    const call = this.setup.call;
    const res = await postJson(call, this.url, { authorization: `Bearer ${call.secret}` }, body, VoyageEmbedResponse, voyageDialect);
    const vectors = new Array<Float32Array>(inputs.length);
    for (const d of res.data) {
      if (d.index >= inputs.length || vectors[d.index]) throw invalidResponse(call.identity, `index ${d.index} out of place`);
      vectors[d.index] = Float32Array.from(d.embedding);
    }
    return { vectors, totalTokens: res.usage?.total_tokens };
  }
}
