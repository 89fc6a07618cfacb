import type { FastifyRequest } from 'fastify';
import type { EmbedOutcome } from '../../core/embed-service.js';

const STORE_UNAVAILABLE = { 'x-cache-store': 'unavailable' } as const;
const NONE = {} as const;

/**
 * Said on a response computed while the cache store was away (its inputs were not looked up).
 * Also kept on the request for the access log line.
 */
export function storeHeaders(request: FastifyRequest, outcome: EmbedOutcome): Record<string, string> {
  request.embedOutcome = outcome;
  return outcome.storeAvailable ? NONE : STORE_UNAVAILABLE;
}
