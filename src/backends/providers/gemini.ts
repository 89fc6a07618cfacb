import { z } from 'zod';
import type { EmbedInput, TaskType } from '../../core/types.js';
import { ProviderEmbedder, endpointScope, joinUrl, texts, type BatchOptions, type BatchResult, type ProviderSetup, type ResolvedProviderModel } from './base.js';
import { asString, pick, postJson, type ErrorDialect } from './http.js';

export const GEMINI_BASE_URL = 'https://generativelanguage.googleapis.com/v1beta';

const GeminiBatchResponse = z.object({ embeddings: z.array(z.object({ values: z.array(z.number()) })) });

const details = (body: unknown): Record<string, unknown>[] => {
  const d = pick(body, 'error', 'details');
  return Array.isArray(d) ? d.filter((x): x is Record<string, unknown> => x !== null && typeof x === 'object') : [];
};

/**
 * Google's errors are `{"error": {"code", "message", "status", "details"}}`. A bad key is a 400
 * whose ErrorInfo reason is API_KEY_INVALID; a 429 carries its delay in RetryInfo (`"30s"`).
 */
export const geminiDialect: ErrorDialect = {
  message: (body) => asString(pick(body, 'error', 'message')),
  isAuthFailure: (status, body) => status === 400 && details(body).some((d) => d.reason === 'API_KEY_INVALID'),
  retryAfter: (body) => {
    const delay = details(body).find((d) => typeof d.retryDelay === 'string')?.retryDelay as string | undefined;
    const s = delay ? Number.parseFloat(delay) : Number.NaN;
    return Number.isFinite(s) ? Math.ceil(s) : undefined;
  },
};

const TASK_TYPES: Record<TaskType, string> = {
  search_document: 'RETRIEVAL_DOCUMENT',
  search_query: 'RETRIEVAL_QUERY',
  classification: 'CLASSIFICATION',
  clustering: 'CLUSTERING',
};

/**
 * Gemini `models/{model}:batchEmbedContents`: one request per text, `taskType`,
 * `outputDimensionality`; at most 100 a call; the key in `x-goog-api-key`. It reports no token
 * count, so usage is estimated (and marked so).
 */
export class GeminiEmbedder extends ProviderEmbedder {
  constructor(setup: ProviderSetup) {
    super(setup, { kind: 'gemini', maxBatch: 100, tokenInputs: false, inputTypes: true, defaultTaskType: null }, endpointScope('gemini', setup.baseUrl));
  }

  protected async callBatch(m: ResolvedProviderModel, inputs: EmbedInput[], o: BatchOptions): Promise<BatchResult> {
    const name = m.model.startsWith('models/') ? m.model : `models/${m.model}`;
    const body = {
      requests: texts(inputs).map((text) => ({
        model: name,
        content: { parts: [{ text }] },
        ...(o.taskType ? { taskType: TASK_TYPES[o.taskType] } : {}),
        ...(o.dimensions ? { outputDimensionality: o.dimensions } : {}),
      })),
    };
    const call = this.setup.call;
    const url = joinUrl(this.setup.baseUrl, `${name}:batchEmbedContents`);
    const res = await postJson(call, url, { 'x-goog-api-key': call.secret }, body, GeminiBatchResponse, geminiDialect);
    return { vectors: res.embeddings.map((e) => Float32Array.from(e.values)) };
  }
}
