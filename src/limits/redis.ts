import { Redis } from 'ioredis';
import type { Logger } from '../log.js';

/**
 * The shared limiter store. Commands fail fast while Redis is down (no offline queue) and time
 * out within `commandTimeoutMs` while it is stalled, so in-process counting takes over at once
 * instead of requests hanging.
 */
export function connectRedis(url: string, logger: Logger, opts: { commandTimeoutMs?: number } = {}): Redis {
  const redis = new Redis(url, {
    enableOfflineQueue: false,
    // Commands issued in the same tick (a request's limiter windows, concurrent requests) share one write.
    enableAutoPipelining: true,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    // A stalled Redis (paused, swapping) keeps its socket open: only a timeout notices. Short, as
    // loopback/LAN answers take well under a millisecond and the limiter then counts in-process.
    commandTimeout: opts.commandTimeoutMs ?? 100,
    retryStrategy: (times) => Math.min(times * 200, 2000),
  });
  let lastLog = 0;
  redis.on('error', (err: Error) => {
    // Reconnect attempts fail every few hundred ms while Redis is down: log at most every 10 s.
    if (Date.now() - lastLog > 10_000) {
      lastLog = Date.now();
      logger.warn({ err: err.message }, 'Redis unavailable: rate limits fall back to in-process counters');
    }
  });
  return redis;
}
