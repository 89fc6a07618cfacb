import { Redis } from 'ioredis';
import type { Logger } from '../log.js';

/**
 * The shared limiter store. Commands fail fast while Redis is down (no offline queue), so the
 * rate limiter's in-process insurance takes over at once instead of requests hanging.
 */
export function connectRedis(url: string, logger: Logger): Redis {
  const redis = new Redis(url, {
    enableOfflineQueue: false,
    // Commands issued in the same tick (a request's limiter windows, concurrent requests) share one write.
    enableAutoPipelining: true,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    commandTimeout: 500,
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
