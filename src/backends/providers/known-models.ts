import type { DimensionsMethod } from '../../core/types.js';
import type { ProviderKind } from './errors.js';

export interface KnownModel {
  dimensions: number;
  maxInputTokens: number;
  dimensionsMethod: DimensionsMethod;
}

const openaiModels: Record<string, KnownModel> = {
  'text-embedding-3-small': { dimensions: 1536, maxInputTokens: 8191, dimensionsMethod: 'truncate' },
  'text-embedding-3-large': { dimensions: 3072, maxInputTokens: 8191, dimensionsMethod: 'truncate' },
  'text-embedding-ada-002': { dimensions: 1536, maxInputTokens: 8191, dimensionsMethod: 'none' },
};

/**
 * What we know of each kind's well-known models (from the providers' model pages); others are
 * learnt from their first response, or declared in the provider's model list. `native`: the
 * provider reduces the vector itself (Cohere `output_dimension`, Voyage `output_dimension`,
 * Gemini `outputDimensionality`), which is not the same vector as truncating ours.
 */
export const KNOWN_MODELS: Record<ProviderKind, Record<string, KnownModel>> = {
  openai: openaiModels,
  // Azure deployments are often named after their model.
  'azure-openai': openaiModels,
  cohere: {
    'embed-v4.0': { dimensions: 1536, maxInputTokens: 128_000, dimensionsMethod: 'native' },
    'embed-english-v3.0': { dimensions: 1024, maxInputTokens: 512, dimensionsMethod: 'none' },
    'embed-multilingual-v3.0': { dimensions: 1024, maxInputTokens: 512, dimensionsMethod: 'none' },
    'embed-english-light-v3.0': { dimensions: 384, maxInputTokens: 512, dimensionsMethod: 'none' },
    'embed-multilingual-light-v3.0': { dimensions: 384, maxInputTokens: 512, dimensionsMethod: 'none' },
  },
  voyage: {
    'voyage-3.5': { dimensions: 1024, maxInputTokens: 32_000, dimensionsMethod: 'native' },
    'voyage-3.5-lite': { dimensions: 1024, maxInputTokens: 32_000, dimensionsMethod: 'native' },
    'voyage-3-large': { dimensions: 1024, maxInputTokens: 32_000, dimensionsMethod: 'native' },
    'voyage-code-3': { dimensions: 1024, maxInputTokens: 32_000, dimensionsMethod: 'native' },
    'voyage-3': { dimensions: 1024, maxInputTokens: 32_000, dimensionsMethod: 'none' },
    'voyage-3-lite': { dimensions: 512, maxInputTokens: 32_000, dimensionsMethod: 'none' },
  },
  gemini: {
    'gemini-embedding-001': { dimensions: 3072, maxInputTokens: 2048, dimensionsMethod: 'native' },
    'text-embedding-004': { dimensions: 768, maxInputTokens: 2048, dimensionsMethod: 'native' },
  },
  template: {},
};
