import { RateLimiterCluster, RateLimiterMemory, type RateLimiterAbstract } from 'rate-limiter-flexible';

export interface MachineLimiterOptions {
  keyPrefix: string;
  points: number;
  duration: number;
  /**
   * This process is one of several `serve` workers (node:cluster): the count lives in the
   * primary (rate-limiter-flexible's RateLimiterClusterMaster, over the cluster's IPC), so a
   * limit of N admits N on the machine, not N per worker.
   */
  clustered: boolean;
}

/** The limiter that counts on this machine without Redis: in memory, or in the cluster's primary. */
export function machineLimiter(o: MachineLimiterOptions): RateLimiterAbstract {
  const opts = { keyPrefix: o.keyPrefix, points: o.points, duration: o.duration };
  // The primary keeps the first options it sees per prefix: a changed budget needs a prefix of its own.
  return o.clustered ? new RateLimiterCluster({ ...opts, keyPrefix: `${o.keyPrefix}:${o.points}:${o.duration}`, timeoutMs: 2000 }) : new RateLimiterMemory(opts);
}
