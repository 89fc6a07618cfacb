import type { DimensionsMethod } from '../core/types.js';

/** What we know of well-known upstream models; others are learnt from their first response. */
export const KNOWN_UPSTREAM_MODELS: Record<string, { dimensions: number; maxInputTokens: number; dimensionsMethod: DimensionsMethod }> = {
  'text-embedding-3-small': { dimensions: 1536, maxInputTokens: 8191, dimensionsMethod: 'truncate' },
  'text-embedding-3-large': { dimensions: 3072, maxInputTokens: 8191, dimensionsMethod: 'truncate' },
  'text-embedding-ada-002': { dimensions: 1536, maxInputTokens: 8191, dimensionsMethod: 'none' },
};
