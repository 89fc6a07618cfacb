import { RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { machineLimiter } from './machine-limiter.js';
import type { Redis } from 'ioredis';
import { DomainError, type LimitWindow, type LimitWindows } from '../core/errors.js';
import type { Tier } from '../core/domain.js';

/** One window's state, as OpenAI's x-ratelimit-* headers report it. */
export type WindowState = LimitWindow;

export type LimitState = LimitWindows;

export type LimitDecision = 'allowed' | 'limited';

interface TierLimiters {
  day: ResilientLimiter | null;
  burst: ResilientLimiter | null;
  tokens: ResilientLimiter | null;
}

/**
 * Whether Redis is worth asking. A failed or timed-out command (a stalled or dead Redis) opens
 * the breaker: requests count in-process at once, at no cost, and a background PING closes it
 * again when Redis answers. Only requests already waiting on Redis when it stalled pay the
 * command timeout.
 */
export class RedisHealth {
  private down = false;
  /** Commands that failed or timed out, and decisions made in-process without asking Redis. */
  readonly counts = { failed: 0, skipped: 0 };
  /** When the breaker last closed: in-process counts stay enforced for a window after it. */
  private recoveredAt = -Infinity;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly redis: Redis,
    private readonly probeMs = 200,
  ) {}

  get usable(): boolean {
    return !this.down && this.redis.status === 'ready';
  }

  /**
   * True while Redis is away, and for one `windowMs` after it came back: what this process
   * admitted meanwhile was counted only in memory, so memory must agree too or a second full
   * burst would get in when Redis returns.
   */
  recent(windowMs: number): boolean {
    return this.down || this.redis.status !== 'ready' || performance.now() - this.recoveredAt < windowMs;
  }

  failed(): void {
    this.counts.failed++;
    if (this.down) return;
    this.down = true;
    this.probe();
  }

  private probe(): void {
    this.timer = setTimeout(() => {
      this.redis.ping().then(
        () => {
          this.down = false;
          this.timer = null;
          this.recoveredAt = performance.now();
        },
        () => this.probe(),
      );
    }, this.probeMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
  }
}

/**
 * One window, counted in Redis (global across instances) and always in memory too (this
 * process's share, a lower bound of the global count). Redis decides while it answers; while
 * it does not, memory decides; right after it returns both must allow (see RedisHealth.recent).
 */
class ResilientLimiter {
  private readonly memory: RateLimiterAbstract;
  private readonly shared: RateLimiterRedis | null;

  constructor(
    keyPrefix: string,
    points: number,
    private readonly duration: number,
    private readonly health: RedisHealth | null,
    redis: Redis | null,
    clustered: boolean,
  ) {
    // With Redis, memory is this process's insurance share; without it, the machine's count.
    this.memory = machineLimiter({ keyPrefix, points, duration, clustered: clustered && !redis });
    // Without an insurance limiter of its own: the fallback is decided here (breaker, both counts).
    this.shared = redis ? new RateLimiterRedis({ storeClient: redis, keyPrefix, points, duration, rejectIfRedisNotReady: true }) : null;
  }

  async consume(key: string): Promise<RateLimiterRes> {
    const local = this.memory.consume(key).then(
      (r) => ({ ok: true as const, r }),
      (r: unknown) => ({ ok: false as const, r: asRes(r) }),
    );
    const health = this.health;
    if (!this.shared || !health) return unwrap(await local);
    if (!health.usable) {
      health.counts.skipped++;
      return unwrap(await local);
    }
    let shared: RateLimiterRes;
    try {
      shared = await this.shared.consume(key);
    } catch (err) {
      if (err instanceof RateLimiterRes) throw err;
      health.failed();
      return unwrap(await local);
    }
    const mine = await local;
    if (!mine.ok && health.recent(this.duration * 1000)) throw mine.r;
    return shared;
  }

  async get(key: string): Promise<RateLimiterRes | null> {
    if (this.shared && this.health?.usable) {
      try {
        return await this.shared.get(key);
      } catch {
        this.health.failed();
      }
    }
    return this.memory.get(key);
  }

  penalty(key: string, points: number): void {
    void this.memory.penalty(key, points).catch(() => {});
    if (this.shared && this.health?.usable) this.shared.penalty(key, points).catch(() => this.health?.failed());
  }
}

function unwrap(x: { ok: boolean; r: RateLimiterRes }): RateLimiterRes {
  if (!x.ok) throw x.r;
  return x.r;
}

/**
 * Per-tenant limits of a tier: requests per day, a burst per second, tokens per minute.
 * Counting rules: every authenticated /v1 request costs one request (hit or miss, one input or
 * 2048); tokens are charged for misses only (what the backend computed), after the response is
 * known, so one request may overshoot the token budget; the next is refused.
 * With Redis the budget is global across instances; when Redis fails or stalls, in-process
 * counts with the same budget take over at once (see RedisHealth) and the service keeps serving.
 */
export class RateLimits {
  private readonly byTier = new Map<string, TierLimiters>();
  /** Per Tier object (the catalogue keeps them until a refresh): no signature string per request. */
  private readonly byTierObject = new WeakMap<Tier, TierLimiters>();
  private readonly health: RedisHealth | null;

  constructor(
    private readonly redis: Redis | null,
    private readonly keyPrefix: string,
    private readonly onDecision: (d: LimitDecision, window: string) => void = () => {},
    /** One of several `serve` workers: without Redis, counts live in the cluster's primary. */
    private readonly clustered = false,
  ) {
    this.health = redis ? new RedisHealth(redis) : null;
  }

  /** Redis commands that failed or timed out, and decisions made in-process without asking it. */
  get redisCounts(): { failed: number; skipped: number } {
    return { ...(this.health?.counts ?? { failed: 0, skipped: 0 }) };
  }

  /** Redis's breaker, shared with other per-request Redis users (usage counting). */
  get redisHealth(): RedisHealth | null {
    return this.health;
  }

  /** False while the limiter counts in-process only (Redis stalled or away). */
  get redisUsable(): boolean {
    return this.health?.usable ?? false;
  }

  close(): void {
    this.health?.stop();
  }

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

  private make(prefix: string, points: number | null, duration: number): ResilientLimiter | null {
    if (points === null) return null;
    return new ResilientLimiter(`${this.keyPrefix}:${prefix}`, points, duration, this.health, this.redis, this.clustered);
  }

  /**
   * Counts one request for `tenantId`; throws a `rate_limited` DomainError (with the windows' state) when over a limit.
   * The three windows are asked at once (one pipelined Redis round trip, not three); a request
   * refused by one window still counts in the others, as a refused request does at OpenAI.
   */
  admit(tenantId: number, tier: Tier): LimitState | Promise<LimitState> {
    const l = this.limiters(tier);
    // An unlimited tier is answered without a promise (the hot path).
    if (!l.tokens && !l.burst && !l.day) return UNLIMITED;
    return this.count(tenantId, tier, l);
  }

  private async count(tenantId: number, tier: Tier, l: TierLimiters): Promise<LimitState> {
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
    // A Redis failure loses the shared charge (memory has it), never a response.
    l.tokens.penalty(String(tenantId), tokens);
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
