import type { Redis } from 'ioredis';
import type { UsageDelta } from '../core/domain.js';
import type { Logger } from '../log.js';

const COUNTERS = ['requests', 'inputs', 'hits', 'misses', 'promptTokens', 'hitTokens'] as const;

/** One request's usage, added to the tenant/day/model hash and the set of hashes to drain, in one atomic call. */
const ADD = `
redis.call('SADD', KEYS[1], KEYS[2])
for i = 1, 6 do redis.call('HINCRBY', KEYS[2], ARGV[i * 2 - 1], ARGV[i * 2]) end
redis.call('HINCRBYFLOAT', KEYS[2], 'backendMs', ARGV[13])
return 1`;

/** Takes a hash's counts and deletes it, atomically: two drainers never both get the same counts. */
const TAKE = `
local v = redis.call('HGETALL', KEYS[2])
redis.call('DEL', KEYS[2])
redis.call('SREM', KEYS[1], KEYS[2])
return v`;

type Commands = Redis & {
  ecUsageAdd(set: string, hash: string, ...args: (string | number)[]): Promise<number>;
  ecUsageTake(set: string, hash: string): Promise<string[]>;
};

/**
 * Usage counted in Redis as each request is answered, so a process that crashes (SIGKILL, OOM)
 * leaves its counts behind instead of losing the last flush window. Any process drains them to
 * the database periodically (drain()): counts of a crashed process are moved by the others, or
 * by itself when it comes back.
 */
export class RedisUsage {
  private readonly redis: Commands;
  private readonly set: string;
  private draining: Promise<number> | null = null;

  constructor(
    redis: Redis,
    private readonly prefix: string,
    private readonly logger: Logger,
    /** Whether Redis is answering (the limiter's breaker): while not, add() refuses at once. */
    private readonly usable: () => boolean = () => redis.status === 'ready',
  ) {
    redis.defineCommand('ecUsageAdd', { numberOfKeys: 2, lua: ADD });
    redis.defineCommand('ecUsageTake', { numberOfKeys: 2, lua: TAKE });
    this.redis = redis as Commands;
    this.set = `${prefix}:usage:pending`;
  }

  /** Counts one request's usage; rejects when Redis is away or slow (the caller keeps the delta in memory then). */
  add(d: UsageDelta): Promise<void> {
    if (!this.usable()) return Promise.reject(new Error('Redis is not answering'));
    const args: (string | number)[] = [];
    for (const c of COUNTERS) args.push(c, d[c]);
    args.push(d.backendMs);
    return this.redis.ecUsageAdd(this.set, `${this.prefix}:usage:${d.tenantId}|${d.day}|${d.model}`, ...args).then(
      () => undefined,
      (err: unknown) => {
        // A timed-out command was written to Redis and runs when Redis gets to it (a stall, a
        // busy server): counting it in memory as well would count it twice. Only a command
        // that was never sent (not connected) is handed back.
        if (err instanceof Error && /timed out/i.test(err.message)) return;
        throw err;
      },
    );
  }

  /**
   * Moves every pending count to `write` (the database). Counts whose write fails are put back
   * into Redis. Concurrent calls share one drain. Resolves with the number of hashes moved.
   */
  drain(write: (deltas: UsageDelta[]) => Promise<void>): Promise<number> {
    this.draining ??= this.drainOnce(write).finally(() => (this.draining = null));
    return this.draining;
  }

  private async drainOnce(write: (deltas: UsageDelta[]) => Promise<void>): Promise<number> {
    const keys = await this.redis.smembers(this.set);
    if (keys.length === 0) return 0;
    const deltas: UsageDelta[] = [];
    for (const key of keys) {
      const flat = await this.redis.ecUsageTake(this.set, key);
      const d = parse(key.slice(`${this.prefix}:usage:`.length), flat);
      if (d) deltas.push(d);
    }
    try {
      await write(deltas);
    } catch (err) {
      this.logger.warn({ err, entries: deltas.length }, 'writing usage drained from Redis failed; putting it back');
      for (const d of deltas) await this.redis.ecUsageAdd(this.set, `${this.prefix}:usage:${d.tenantId}|${d.day}|${d.model}`, ...COUNTERS.flatMap((c) => [c, d[c]]), d.backendMs);
      throw err;
    }
    return deltas.length;
  }
}

function parse(id: string, flat: string[]): UsageDelta | null {
  const [tenant, day, ...model] = id.split('|');
  if (!tenant || !day || model.length === 0 || flat.length === 0) return null;
  const f: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) f[flat[i]] = flat[i + 1];
  const n = (k: string) => Number(f[k] ?? 0);
  return {
    tenantId: Number(tenant),
    day,
    model: model.join('|'),
    requests: n('requests'),
    inputs: n('inputs'),
    hits: n('hits'),
    misses: n('misses'),
    promptTokens: n('promptTokens'),
    hitTokens: n('hitTokens'),
    backendMs: n('backendMs'),
  };
}
