import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Redis } from 'ioredis';
import { DomainError, type LimitWindow, type LimitWindows } from '../core/errors.js';
import type { Tier } from '../core/domain.js';

/** One window's state, as OpenAI's x-ratelimit-* headers report it. */
export type WindowState = LimitWindow;

export type LimitState = LimitWindows;

export type LimitDecision = 'allowed' | 'limited';

interface TierLimiters {
  day: RateLimiterAbstract | null;
  burst: RateLimiterAbstract | null;
  tokens: RateLimiterAbstract | null;
}

/**
 * Per-tenant limits of a tier: requests per day, a burst per second, tokens per minute.
 * Counting rules: every authenticated /v1 request costs one request (hit or miss, one input or
 * 2048); tokens are charged for misses only (what the backend computed), after the response is
 * known, so one request may overshoot the token budget; the next is refused.
 * With Redis the budget is global across instances; when Redis fails, an in-process
 * "insurance" limiter with the same budget takes over and the service keeps serving.
 */
export class RateLimits {
  private readonly byTier = new Map<string, TierLimiters>();
  /** Per Tier object (the catalogue keeps them until a refresh): no signature string per request. */
  private readonly byTierObject = new WeakMap<Tier, TierLimiters>();

  constructor(
    private readonly redis: Redis | null,
    private readonly keyPrefix: string,
    private readonly onDecision: (d: LimitDecision, window: string) => void = () => {},
  ) {}

  private limiters(tier: Tier): TierLimiters {
    const known = this.byTierObject.get(tier);
    if (known) return known;
    const sig = `${tier.name}:${tier.requestsPerDay}:${tier.burstPerSecond}:${tier.tokensPerMinute}`;
    let l = this.byTier.get(sig);
    if (!l) {
      l = {
        day: this.make(`rpd:${tier.name}`, tier.requestsPerDay, 86_400),
        burst: this.make(`rps:${tier.name}`, tier.burstPerSecond, 1),
        tokens: this.make(`tpm:${tier.name}`, tier.tokensPerMinute, 60),
      };
      this.byTier.set(sig, l);
    }
    this.byTierObject.set(tier, l);
    return l;
  }

  private make(prefix: string, points: number | null, duration: number): RateLimiterAbstract | null {
    if (points === null) return null;
    const keyPrefix = `${this.keyPrefix}:${prefix}`;
    const memory = new RateLimiterMemory({ keyPrefix, points, duration });
    if (!this.redis) return memory;
    return new RateLimiterRedis({ storeClient: this.redis, keyPrefix, points, duration, insuranceLimiter: memory });
  }

  /**
   * Counts one request for `tenantId`; throws a `rate_limited` DomainError (with the windows' state) when over a limit.
   * The three windows are asked at once (one pipelined Redis round trip, not three); a request
   * refused by one window still counts in the others, as a refused request does at OpenAI.
   */
  async admit(tenantId: number, tier: Tier): Promise<LimitState> {
    const l = this.limiters(tier);
    if (!l.tokens && !l.burst && !l.day) return UNLIMITED;
    const key = String(tenantId);
    const [tokens, burst, day] = await Promise.allSettled([
      l.tokens ? l.tokens.get(key) : null,
      l.burst ? l.burst.consume(key) : null,
      l.day ? l.day.consume(key) : null,
    ]);
    const state: LimitState = { requests: null, tokens: null };
    if (tier.tokensPerMinute !== null) {
      state.tokens = windowState(tier.tokensPerMinute, settled(tokens));
    }
    if (tier.requestsPerDay !== null) state.requests = windowState(tier.requestsPerDay, settled(day));
    const usedTokens = settled(tokens);
    if (usedTokens && tier.tokensPerMinute !== null && usedTokens.consumedPoints >= tier.tokensPerMinute) {
      this.onDecision('limited', 'tokens');
      throw limited(`Rate limit reached for tokens per minute (tier ${tier.name}: ${tier.tokensPerMinute}).`, state, usedTokens.msBeforeNext);
    }
    if (burst.status === 'rejected') {
      this.onDecision('limited', 'burst');
      throw limited(`Rate limit reached: at most ${tier.burstPerSecond} requests per second on tier ${tier.name}.`, state, asRes(burst.reason).msBeforeNext);
    }
    if (day.status === 'rejected') {
      this.onDecision('limited', 'requests');
      throw limited(`Rate limit reached for requests per day (tier ${tier.name}: ${tier.requestsPerDay}).`, state, asRes(day.reason).msBeforeNext);
    }
    this.onDecision('allowed', 'all');
    return state;
  }

  /**
   * Charges tokens a request computed (misses only), off the response path: penalty() adds
   * points without rejecting, and an over-budget tenant is refused on its next request.
   */
  chargeTokens(tenantId: number, tier: Tier, tokens: number): void {
    const l = this.limiters(tier);
    if (!l.tokens || tokens <= 0) return;
    // Redis and insurance both failing loses one charge, never a response.
    l.tokens.penalty(String(tenantId), tokens).catch(() => {});
  }
}

const UNLIMITED: LimitState = Object.freeze({ requests: null, tokens: null });

/** A window's answer: allowed or refused, both carry the counts. */
function settled(r: PromiseSettledResult<RateLimiterRes | null>): RateLimiterRes | null {
  return r.status === 'fulfilled' ? r.value : asRes(r.reason);
}

function asRes(rej: unknown): RateLimiterRes {
  if (rej instanceof RateLimiterRes) return rej;
  // Neither the store nor the insurance limiter answered: a real fault, not a limit.
  throw rej;
}

function windowState(limit: number, res: RateLimiterRes | null): WindowState {
  if (!res) return { limit, remaining: limit, resetMs: 0 };
  return { limit, remaining: Math.max(0, limit - res.consumedPoints), resetMs: res.msBeforeNext };
}

function limited(message: string, state: LimitState, msBeforeNext: number): DomainError {
  const retryAfterSeconds = Math.max(1, Math.ceil(msBeforeNext / 1000));
  return new DomainError('rate_limited', `${message} Retry after ${retryAfterSeconds}s, or ask for a higher tier.`, {
    code: 'rate_limit_exceeded',
    retryAfterSeconds,
    limits: state,
  });
}

/** OpenAI's header names and duration format ("1s", "6m0s", "1h2m3s"). */
export function limitHeaders(state: LimitState): Record<string, string> {
  const h: Record<string, string> = {};
  for (const [name, w] of [['requests', state.requests], ['tokens', state.tokens]] as const) {
    if (!w) continue;
    h[`x-ratelimit-limit-${name}`] = String(w.limit);
    h[`x-ratelimit-remaining-${name}`] = String(w.remaining);
    h[`x-ratelimit-reset-${name}`] = formatDuration(w.resetMs);
  }
  return h;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  let s = Math.ceil(ms / 1000);
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  return `${h > 0 ? `${h}h` : ''}${h > 0 || m > 0 ? `${m}m` : ''}${s}s`;
}
