import type { Tier } from './domain.js';
import type { EmbedOutcome, EmbedService } from './embed-service.js';
import { DomainError } from './errors.js';
import type { ModelAccess } from './model-access.js';
import type { TokenMeter } from './ports.js';
import type { TenantContext } from './tenant.js';
import type { EmbedInput, ModelSpec, TaskType } from './types.js';

/** One embeddings request as every entry point (OpenAI route, native routes, seed) states it. */
export interface EmbedCommand {
  /** The model id the caller sent; undefined = the first model this tenant may use (native routes). */
  model: string | undefined;
  inputs: EmbedInput[];
  dimensions?: number;
  taskType?: TaskType | null;
}

export interface EmbedRequestDeps {
  models: ModelAccess;
  embeddings: EmbedService;
  tokens: TokenMeter;
}

/**
 * The embeddings use-case, once: resolve the model for this tenant -> refuse a `dimensions` it
 * cannot give -> embed through the cache -> charge computed tokens -> check the vectors really
 * are long enough for `dimensions`. Routes only parse and encode.
 */
export class EmbedRequests {
  constructor(private readonly deps: EmbedRequestDeps) {}

  async run(tenant: TenantContext, tier: Tier, cmd: EmbedCommand): Promise<EmbedOutcome> {
    const id = cmd.model ?? (await this.deps.models.defaultModel(tenant, tier));
    if (!id) throw new DomainError('invalid_input', 'No model is available to you on this server; pass `model`.', { param: 'model' });
    const model = await this.deps.models.resolve(tenant, tier, id);
    checkDimensions(model.spec, cmd.dimensions);
    const outcome = await this.deps.embeddings.embed(tenant, { model, inputs: cmd.inputs, taskType: cmd.taskType, dimensions: cmd.dimensions });
    this.deps.tokens.chargeTokens(tenant.id, tier, outcome.missTokens);
    checkDerivable(outcome, cmd.dimensions);
    return outcome;
  }
}

/** Refuses a `dimensions` the model cannot give, before any work is done. */
export function checkDimensions(spec: ModelSpec, dims: number | undefined): void {
  if (dims === undefined) return;
  if (spec.dimensionsMethod === 'none' && dims !== spec.dimensions) {
    throw new DomainError('invalid_input', `This model (${spec.id}) does not support specifying dimensions.`, { param: 'dimensions' });
  }
  if (spec.dimensions !== null && dims > spec.dimensions) throw tooManyDimensions(spec.id, spec.dimensions);
}

/**
 * After the fact: a provider may return vectors shorter than its model's spec says (an
 * OpenAI-compatible server serving another model under a known name). Never derive past them.
 */
export function checkDerivable(outcome: EmbedOutcome, dims: number | undefined): void {
  const full = outcome.items[0].bytes.length / 4;
  if (dims !== undefined && dims > full) throw tooManyDimensions(outcome.spec.id, full);
}

function tooManyDimensions(model: string, full: number): DomainError {
  return new DomainError('invalid_input', `dimensions must be at most ${full} for ${model}.`, { param: 'dimensions' });
}

/** The x-cache header's value. */
export function cacheResult(o: EmbedOutcome): 'hit' | 'miss' | 'partial' {
  return o.hits === o.items.length ? 'hit' : o.hits === 0 ? 'miss' : 'partial';
}
