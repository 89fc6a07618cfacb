import { RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { machineLimiter } from './machine-limiter.js';
import type { Redis } from 'ioredis';
import { DomainError } from '../core/errors.js';

/**
 * Brute-force limits on signup and login: failures per client address and per email within a
 * window (Redis when configured, so every instance counts together, with an in-process
 * insurance limiter; in-process alone otherwise). A caller over either budget is refused before
 * any password is checked, with the seconds until the window frees up.
 */
export class AuthLimits {
  private readonly byAddress: RateLimiterAbstract;
  private readonly byEmail: RateLimiterAbstract;

  constructor(
    redis: Redis | null,
    keyPrefix: string,
    opts: { perAddress: number; perEmail: number; windowSeconds: number; clustered?: boolean },
  ) {
    const make = (name: string, points: number): RateLimiterAbstract => {
      const o = { keyPrefix: `${keyPrefix}:auth:${name}`, points, duration: opts.windowSeconds };
      const memory = machineLimiter({ ...o, clustered: (opts.clustered ?? false) && !redis });
      return redis ? new RateLimiterRedis({ ...o, storeClient: redis, insuranceLimiter: memory }) : memory;
    };
    this.byAddress = make('addr', opts.perAddress);
    this.byEmail = make('email', opts.perEmail);
  }

  /**
   * Counts one attempt against both budgets, atomically in the limiter (parallel guesses cannot
   * slip past a check-then-count), and throws `rate_limited` when either is spent.
   */
  async attempt(address: string, email: string): Promise<void> {
    const [a, e] = await Promise.allSettled([this.byAddress.consume(address), this.byEmail.consume(email)]);
    for (const [r, what] of [
      [a, 'from your address'],
      [e, 'for this email'],
    ] as const) {
      if (r.status === 'fulfilled') continue;
      // Neither Redis nor the insurance limiter answered: a fault, not a limit.
      if (!(r.reason instanceof RateLimiterRes)) throw r.reason;
      throw tooMany(what, r.reason.msBeforeNext);
    }
  }

  /** A login that succeeded gives its attempt back: only failures use up the budget. */
  async succeeded(address: string, email: string): Promise<void> {
    await Promise.all([this.byAddress.reward(address, 1), this.byEmail.reward(email, 1)]).catch(() => {});
  }
}

function tooMany(what: string, msBeforeNext: number): DomainError {
  const retryAfterSeconds = Math.max(1, Math.ceil(msBeforeNext / 1000));
  return new DomainError('rate_limited', `Too many attempts ${what}. Retry after ${retryAfterSeconds}s.`, {
    code: 'too_many_attempts',
    retryAfterSeconds,
  });
}
