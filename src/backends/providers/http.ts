import type { z } from 'zod';
import { setTimeout as sleep } from 'node:timers/promises';
import { rawPostOf, type RawReply } from '../lean-fetch.js';
import { cleanProviderMessage, invalidResponse, providerHttpError, providerTransportError, retryAfterSeconds, type ProviderIdentity } from './errors.js';

/** How one provider is called: its fetch (SSRF-guarded for tenants), deadline and retries. */
export interface CallContext {
  identity: ProviderIdentity;
  fetch: typeof fetch;
  timeoutMs: number;
  /** Retries with backoff on connection errors, 408, 409 and 5xx, and on a 429 asking for at most 5 s. */
  maxRetries: number;
  /** The key, so a provider message that echoes it is redacted. */
  secret: string;
}

/** How a provider words its errors. */
export interface ErrorDialect {
  /** The human message inside an error body. */
  message(body: unknown, text: string): string | undefined;
  /** A "bad key" that is not a 401/403 (Gemini answers 400 API_KEY_INVALID). */
  isAuthFailure?(status: number, body: unknown): boolean;
  /** A retry delay carried in the body rather than a Retry-After header (Gemini's RetryInfo). */
  retryAfter?(body: unknown): number | undefined;
}

const RETRYABLE = (status: number) => status === 408 || status === 409 || status >= 500;
const MAX_HONOURED_RETRY_AFTER_S = 5;

/**
 * POSTs JSON and returns the response body validated by `schema`. Every failure becomes a
 * DomainError naming the provider: the kinds' modules only describe their wire format.
 */
export async function postJson<T>(
  ctx: CallContext,
  url: string,
  headers: Record<string, string>,
  body: unknown,
  schema: z.ZodType<T>,
  dialect: ErrorDialect,
): Promise<T> {
  return parseBody(ctx, await postForText(ctx, url, headers, body, dialect), schema);
}

/**
 * POSTs JSON and returns a 2xx answer's raw body (for callers that check it themselves, like
 * the OpenAI-compatible client). Retries, deadline and error mapping as for postJson.
 */
export async function postForText(ctx: CallContext, url: string, headers: Record<string, string>, body: unknown, dialect: ErrorDialect): Promise<string> {
  const payload = JSON.stringify(body);
  const post = rawPostOf(ctx.fetch);
  const allHeaders = { 'content-type': 'application/json', accept: 'application/json', ...headers };
  for (let attempt = 0; ; attempt++) {
    const deadline = AbortSignal.timeout(ctx.timeoutMs);
    let res: RawReply;
    try {
      res = await post(url, { headers: allHeaders, body: payload, signal: deadline });
    } catch (err) {
      const mapped = providerTransportError(ctx.identity, err, deadline.aborted);
      if (attempt < ctx.maxRetries && mapped.kind === 'upstream_unreachable') {
        await sleep(backoffMs(attempt));
        continue;
      }
      throw mapped;
    }
    if (res.status >= 200 && res.status < 300) return res.text;
    const errBody = tryJson(res.text);
    const retryAfter = retryAfterSeconds(res.header('retry-after')) ?? dialect.retryAfter?.(errBody);
    const retry429 = res.status === 429 && retryAfter !== undefined && retryAfter <= MAX_HONOURED_RETRY_AFTER_S;
    if (attempt < ctx.maxRetries && (RETRYABLE(res.status) || retry429)) {
      await sleep(retry429 ? retryAfter * 1000 : backoffMs(attempt));
      continue;
    }
    const message = cleanProviderMessage(dialect.message(errBody, res.text) ?? res.text, ctx.secret);
    throw providerHttpError(ctx.identity, res.status, message, {
      retryAfterSeconds: retryAfter,
      authFailure: dialect.isAuthFailure?.(res.status, errBody) ?? false,
    });
  }
}

function parseBody<T>(ctx: CallContext, text: string, schema: z.ZodType<T>): T {
  const json = tryJson(text);
  if (json === undefined) throw invalidResponse(ctx.identity, 'the body is not JSON');
  const r = schema.safeParse(json);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  throw invalidResponse(ctx.identity, `${issue.path.map(String).join('.') || '(body)'}: ${issue.message}`);
}

function tryJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** 0.5 s, 1 s, 2 s … up to 8 s, with jitter so retries of many requests spread out. */
function backoffMs(attempt: number): number {
  const base = Math.min(8000, 500 * 2 ** attempt);
  return base * (0.75 + Math.random() * 0.25);
}

/** Reads `obj.a.b` of an unknown JSON value, or undefined. */
export function pick(obj: unknown, ...path: string[]): unknown {
  let cur = obj;
  for (const k of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  return cur;
}

export const asString = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
