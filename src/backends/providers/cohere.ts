import { z } from 'zod';
import type { EmbedInput, TaskType } from '../../core/types.js';
import { ProviderEmbedder, endpointScope, joinUrl, texts, type BatchOptions, type BatchResult, type ProviderSetup, type ResolvedProviderModel } from './base.js';
import { asString, pick, postJson, type ErrorDialect } from './http.js';

export const COHERE_BASE_URL = 'https://api.cohere.com';

/** POST /v2/embed's answer (with `embedding_types: ["float"]`). */
const CohereEmbedResponse = z.object({
  id: z.string().optional(),
  embeddings: z.object({ float: z.array(z.array(z.number())) }),
  meta: z
    .object({
      api_version: z.object({ version: z.string() }).partial().optional(),
      billed_units: z.object({ input_tokens: z.number().int().min(0) }).partial().optional(),
    })
    .optional(),
});

/** Cohere's errors are `{"message": "..."}` (v2 also sends `id`). */
export const cohereDialect: ErrorDialect = { message: (body) => asString(pick(body, 'message')) };

const INPUT_TYPES: Record<TaskType, string> = {
  search_document: 'search_document',
  search_query: 'search_query',
  classification: 'classification',
  clustering: 'clustering',
};

/** Cohere Embed v2: `texts`, `input_type` (required from v3 models on), at most 96 texts a call. */
export class CohereEmbedder extends ProviderEmbedder {
  private readonly url: string;

  constructor(setup: ProviderSetup) {
    super(setup, { kind: 'cohere', maxBatch: 96, tokenInputs: false, inputTypes: true, defaultTaskType: 'search_document' }, endpointScope('cohere', setup.baseUrl));
    // Both `https://api.cohere.com` and `https://api.cohere.com/v2` name the same API.
    this.url = joinUrl(setup.baseUrl.replace(/\/v2\/?$/, ''), 'v2/embed');
  }

  protected async callBatch(m: ResolvedProviderModel, inputs: EmbedInput[], o: BatchOptions): Promise<BatchResult> {
    const body = {
      model: m.model,
      texts: texts(inputs),
      input_type: INPUT_TYPES[o.taskType ?? 'search_document'],
      embedding_types: ['float'],
      ...(o.dimensions ? { output_dimension: o.dimensions } : {}),
    };
    const call = this.setup.call;
    const res = await postJson(call, this.url, { authorization: `Bearer ${call.secret}` }, body, CohereEmbedResponse, cohereDialect);
    return { vectors: res.embeddings.float.map((v) => Float32Array.from(v)), totalTokens: res.meta?.billed_units?.input_tokens };
  }
}
