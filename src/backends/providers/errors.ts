import { DomainError } from '../../core/errors.js';
import { SsrfError } from '../../security/ssrf.js';

/** The provider kinds a server or a tenant can configure. */
export const PROVIDER_KINDS = ['openai', 'azure-openai', 'cohere', 'voyage', 'gemini', 'template'] as const;
export type ProviderKind = (typeof PROVIDER_KINDS)[number];

/** Who a provider is, for error messages and logs (never its key). */
export interface ProviderIdentity {
  kind: ProviderKind;
  /** The upstream's or the tenant provider's name. */
  name: string;
  /** The tenant's own key (BYOK) or the operator's upstream: decides who is told to fix a key. */
  owner: 'tenant' | 'operator';
  /** Where the operator sets this upstream's key (`UPSTREAM_API_KEY`, `upstreams[0].api_key`). */
  keyHint?: string;
}

export const providerLabel = (p: ProviderIdentity): string => `"${p.name}" (${p.kind})`;

/** What a provider's error body says, trimmed: no control characters, bounded, the key never echoed. */
export function cleanProviderMessage(text: string | undefined, secret: string): string {
  if (!text) return '';
  let t = text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  if (secret.length >= 4) t = t.split(secret).join('[key]');
  return t.length > 300 ? `${t.slice(0, 300)}…` : t;
}

/** Seconds from a Retry-After header (seconds or an HTTP date). */
export function retryAfterSeconds(value: string | null | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  // Never "retry after 0": a client told so would hammer the provider at once.
  const n = Number(value);
  if (Number.isFinite(n) && n >= 0) return Math.max(1, Math.ceil(n));
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(1, Math.ceil((at - now) / 1000));
}

export function refusedKey(p: ProviderIdentity, status: number | undefined): DomainError {
  const how = status ? ` (HTTP ${status})` : '';
  const message =
    p.owner === 'tenant'
      ? `Your provider ${providerLabel(p)} rejected its API key${how}. Replace the key of provider ${p.name} with a valid one.`
      : `The upstream provider ${providerLabel(p)} rejected the configured API key${how}. Ask the operator to check ${p.keyHint ?? `the key of upstream ${p.name}`}.`;
  return new DomainError('upstream_refused', message, { provider: p.name, upstreamStatus: status, owner: p.owner, code: 'upstream_auth_failed' });
}

/**
 * A provider's HTTP error answer as a domain error. `message` is the provider's own text
 * (already cleaned); `authFailure` is for providers that say "bad key" with a 400 (Gemini).
 */
export function providerHttpError(
  p: ProviderIdentity,
  status: number,
  message: string,
  opts: { retryAfterSeconds?: number; authFailure?: boolean } = {},
): DomainError {
  const details = { provider: p.name, upstreamStatus: status, owner: p.owner };
  const said = message ? `: ${message}` : '.';
  if (opts.authFailure || status === 401 || status === 403) return refusedKey(p, status);
  if (status === 429) {
    const when = opts.retryAfterSeconds !== undefined ? ` Retry after ${opts.retryAfterSeconds} s.` : ' Retry shortly.';
    return new DomainError('upstream_rate_limited', `The provider ${providerLabel(p)} is rate-limiting requests${said}${when}`, {
      ...details,
      retryAfterSeconds: opts.retryAfterSeconds,
      code: 'rate_limit_exceeded',
    });
  }
  if (status === 404) {
    return new DomainError('model_not_found', `The provider ${providerLabel(p)} does not know this model or deployment${said}`, { ...details, param: 'model', code: 'model_not_found' });
  }
  if (status === 400 || status === 413 || status === 422) {
    return new DomainError('invalid_input', `The provider ${providerLabel(p)} refused the request${said}`, { ...details, code: 'upstream_bad_request' });
  }
  if (status === 408 || status === 504) return new DomainError('upstream_timeout', `The provider ${providerLabel(p)} timed out (HTTP ${status}). Try again later.`, details);
  // A failing provider's own text is not ours to relay: it may describe its internals.
  if (status >= 500) return new DomainError('upstream_unreachable', `The provider ${providerLabel(p)} failed (HTTP ${status}). Try again later.`, { ...details, code: 'upstream_error' });
  return new DomainError('upstream_refused', `The provider ${providerLabel(p)} refused the request (HTTP ${status})${said}`, { ...details, code: 'upstream_error' });
}

/** A failure before any answer: a blocked URL, a timeout, a connection that could not be made. */
export function providerTransportError(p: ProviderIdentity, err: unknown, timedOut: boolean): DomainError {
  const details = { provider: p.name, owner: p.owner, cause: err };
  const ssrf = findCause(err, SsrfError);
  if (ssrf) return new DomainError('upstream_refused', `The URL of provider ${providerLabel(p)} was refused: ${ssrf.message}`, { ...details, code: 'provider_url_blocked' });
  if (timedOut) return new DomainError('upstream_timeout', `The provider ${providerLabel(p)} did not answer in time. Try again later.`, details);
  const why = (err as Error)?.message ?? String(err);
  return new DomainError('upstream_unreachable', `Could not reach the provider ${providerLabel(p)}: ${why}`, details);
}

export function invalidResponse(p: ProviderIdentity, what: string): DomainError {
  return new DomainError('upstream_invalid_response', `The provider ${providerLabel(p)} answered with an invalid response: ${what}`, { provider: p.name, owner: p.owner });
}

function findCause<T extends Error>(err: unknown, type: new (...a: never[]) => T): T | undefined {
  let cur: unknown = err;
  for (let i = 0; i < 8 && cur instanceof Error; i++) {
    if (cur instanceof type) return cur;
    cur = cur.cause;
  }
  return undefined;
}
