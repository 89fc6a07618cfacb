import { JSONPath } from 'jsonpath-plus';
import { z } from 'zod';
import type { EmbedInput } from '../../core/types.js';
import { ProviderEmbedder, endpointScope, texts, type BatchOptions, type BatchResult, type ProviderSetup, type ResolvedProviderModel } from './base.js';
import { invalidResponse } from './errors.js';
import { asString, pick, postJson, type ErrorDialect } from './http.js';

/** A JSON value: what a request template is made of. */
export type Json = string | number | boolean | null | Json[] | { [k: string]: Json };

export interface TemplateOptions {
  /**
   * The request body. Strings `"{{inputs}}"` become the batch's texts (one call per batch),
   * `"{{input}}"` one text (one call per input; also inside a longer string), `{{model}}` the
   * provider's model name.
   */
  request: Json;
  /** JSONPath to the vectors in the response, e.g. `$.data[*].embedding` (per input: `$.embedding`). */
  vectorsPath: string;
  /** JSONPath to the token count(s), summed; without it tokens are estimated (and marked so). */
  tokensPath?: string;
  /** The header that carries the key, and its format (`{{key}}` is replaced). */
  authHeader: string;
  authFormat: string;
  /** Most texts per call in batch mode. */
  maxBatch: number;
}

const Vectors = z.array(z.array(z.number()).min(1)).min(1);

/** Generic providers word errors in many ways: the commonest places a message lives. */
export const templateDialect: ErrorDialect = {
  message: (b) => asString(pick(b, 'error', 'message')) ?? asString(pick(b, 'message')) ?? asString(pick(b, 'detail')) ?? asString(pick(b, 'error')),
};

export function templateIsBatch(t: Json): boolean {
  if (t === '{{inputs}}') return true;
  if (Array.isArray(t)) return t.some(templateIsBatch);
  if (t !== null && typeof t === 'object') return Object.values(t).some(templateIsBatch);
  return false;
}

/** The template with the placeholders filled: values are substituted as JSON, never spliced as text. */
export function fillTemplate(t: Json, v: { inputs: string[]; model: string }): Json {
  if (t === '{{inputs}}') return v.inputs;
  if (typeof t === 'string') return t.split('{{input}}').join(v.inputs[0] ?? '').split('{{model}}').join(v.model);
  if (Array.isArray(t)) return t.map((x) => fillTemplate(x, v));
  if (t !== null && typeof t === 'object') return Object.fromEntries(Object.entries(t).map(([k, x]) => [k, fillTemplate(x, v)]));
  return t;
}

/**
 * Any JSON embeddings API described by a request template and JSONPath expressions for the
 * vectors and (optionally) the token count. The base URL is the full endpoint URL.
 */
export class TemplateEmbedder extends ProviderEmbedder {
  constructor(
    setup: ProviderSetup,
    private readonly opts: TemplateOptions,
  ) {
    const batch = templateIsBatch(opts.request);
    super(
      setup,
      { kind: 'template', maxBatch: batch ? opts.maxBatch : 1, tokenInputs: false, inputTypes: false, defaultTaskType: null },
      endpointScope('template', setup.baseUrl),
    );
  }

  protected async callBatch(m: ResolvedProviderModel, inputs: EmbedInput[], o: BatchOptions): Promise<BatchResult> {
    const call = this.setup.call;
    const body = fillTemplate(this.opts.request, { inputs: texts(inputs), model: m.model });
    const headers = { [this.opts.authHeader.toLowerCase()]: this.opts.authFormat.split('{{key}}').join(call.secret) };
    const json = await postJson(call, this.setup.baseUrl, headers, body, z.unknown(), templateDialect);
    const found = JSONPath({ path: this.opts.vectorsPath, json: json as object, wrap: true }) as unknown[];
    // `$.data[*].embedding` selects each vector; `$.result.vectors` selects the one array holding them.
    const oneList = found.length === 1 && Array.isArray(found[0]) && (found[0] as unknown[]).every(Array.isArray);
    const parsed = Vectors.safeParse(oneList ? found[0] : found);
    if (!parsed.success) throw invalidResponse(call.identity, `${this.opts.vectorsPath} does not select arrays of numbers`);
    let totalTokens: number | undefined;
    if (this.opts.tokensPath) {
      const t = JSONPath({ path: this.opts.tokensPath, json: json as object, wrap: true }) as unknown[];
      if (t.length > 0 && t.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= 0)) totalTokens = (t as number[]).reduce((a, b) => a + b, 0);
    }
    return { vectors: parsed.data.map((v) => Float32Array.from(v)), totalTokens };
  }
}
