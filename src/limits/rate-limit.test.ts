import { describe, expect, it } from 'vitest';
import { DomainError } from '../core/errors.js';
import type { Tier } from '../core/domain.js';
import { formatDuration, limitHeaders, RateLimits } from './rate-limit.js';

const tier = (p: Partial<Tier>): Tier => ({ name: 't', requestsPerDay: null, burstPerSecond: null, tokensPerMinute: null, maxCachedRows: null, backends: ['upstream'], ...p });

describe('rate limits (in-process)', () => {
  it('formats resets as OpenAI does', () => {
    expect(formatDuration(250)).toBe('250ms');
    expect(formatDuration(1000)).toBe('1s');
    expect(formatDuration(360_000)).toBe('6m0s');
    expect(formatDuration(3_723_000)).toBe('1h2m3s');
  });

  it('counts requests per day per tenant and refuses past the limit with headers', async () => {
    const limits = new RateLimits(null, 'test');
    const t = tier({ requestsPerDay: 2 });
    expect((await limits.admit(1, t)).requests).toMatchObject({ limit: 2, remaining: 1 });
    await limits.admit(1, t);
    const e = await Promise.resolve(limits.admit(1, t)).catch((x: unknown) => x as DomainError);
    expect(e).toMatchObject({ kind: 'rate_limited', code: 'rate_limit_exceeded' });
    expect((e as DomainError).details.retryAfterSeconds).toBeGreaterThan(0);
    expect(limitHeaders((e as DomainError).details.limits!)['x-ratelimit-remaining-requests']).toBe('0');
    // another tenant has its own budget
    expect((await limits.admit(2, t)).requests?.remaining).toBe(1);
  });

  it('charges only computed tokens and refuses once the minute’s budget is spent', async () => {
    const limits = new RateLimits(null, 'test');
    const t = tier({ tokensPerMinute: 100 });
    await limits.admit(1, t);
    limits.chargeTokens(1, t, 100);
    await new Promise((r) => setImmediate(r));
    await expect(limits.admit(1, t)).rejects.toMatchObject({ kind: 'rate_limited' });
  });

  it('costs nothing for an unlimited tier and sends no headers', async () => {
    const limits = new RateLimits(null, 'test');
    const state = await limits.admit(1, tier({}));
    expect(limitHeaders(state)).toEqual({});
  });
});
