/**
 * Processes the benchmark needs. PostgreSQL, Redis and the tracked-child helpers are the test
 * suite's own (test/support/services.ts), loaded through tsx so that the harness still runs
 * under plain node (`npm run bench`, `node bench/limiter.mjs`). What only the harness needs
 * (HTTP readiness, log tails, RSS) is below. Loopback only.
 */
import { readFileSync } from 'node:fs';
import { tsImport } from 'tsx/esm/api';

export const { freePort, sleep, waitFor, canConnect, spawnTracked, stopChild, killAllTracked, startPostgres, startRedis } = await tsImport(
  '../../test/support/services.ts',
  import.meta.url,
);

export function tailOf(file, lines = 30) {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** GET url until it answers 2xx. */
export async function waitHttp(url, what, timeoutMs, child) {
  await waitFor(async () => (await fetch(url, { signal: AbortSignal.timeout(2000) })).ok, what, timeoutMs, child);
}

/** Reads VmRSS of a process, in bytes (null when it is gone). */
export function rssOf(pid) {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}
