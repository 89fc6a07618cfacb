/**
 * A real `embedding-cache serve` child process on a database of its own, with one tenant and
 * key, for tests (and the fault benchmark) that kill or restart it.
 */
import type { ChildProcess } from 'node:child_process';
import { generateApiKey } from '../../src/auth/api-key.js';
import { createLogger } from '../../src/log.js';
import { insertApiKey } from '../../src/store/api-keys.js';
import { openDatabase } from '../../src/store/db.js';
import { migrate } from '../../src/store/migrate.js';
import { ensureTenant } from '../../src/store/tenants.js';
import { upsertTier } from '../../src/store/tiers.js';
import { freePort, sleep, spawnTracked } from './services.js';

export interface ServeProcess {
  url: string;
  child: ChildProcess;
  /** SIGKILL and wait for the exit. */
  kill(): Promise<void>;
}

/** Migrates `databaseUrl` and creates tenant `name` (unlimited tier) with one key. */
export async function seedTenant(databaseUrl: string, name: string): Promise<{ key: string; tenantId: number }> {
  const db = await openDatabase({ databaseUrl, dataDir: '/nonexistent', poolSize: 1, logger: createLogger('silent') });
  try {
    await migrate(db.sql);
    await upsertTier(db.sql, { name: 'unlimited', requestsPerDay: null, burstPerSecond: null, tokensPerMinute: null, maxCachedRows: null, backends: ['byok', 'upstream', 'local'] });
    const tenant = await ensureTenant(db.sql, name, 'unlimited');
    const k = generateApiKey();
    await insertApiKey(db.sql, { tenantId: tenant.id, prefix: k.prefix, keyHash: k.hash, name: null });
    return { key: k.key, tenantId: tenant.id };
  } finally {
    await db.close();
  }
}

/** One process (WORKERS=1 unless `env` says otherwise): SIGKILL then crashes the whole server, as these tests mean. */
export async function startServeProcess(env: Record<string, string>): Promise<ServeProcess> {
  const port = await freePort();
  const child = spawnTracked(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'serve'], {
    env: { ...process.env, LOG_LEVEL: 'warn', WORKERS: '1', ...env, PORT: String(port), HOST: '127.0.0.1' },
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 600; i++) {
    if (child.exitCode !== null) throw new Error(`serve exited (code ${child.exitCode}) before it was ready`);
    if (await fetch(`${url}/healthz`).then((r) => r.ok, () => false)) {
      return {
        url,
        child,
        kill: () =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGKILL');
          }),
      };
    }
    await sleep(100);
  }
  child.kill('SIGKILL');
  throw new Error('serve did not answer /healthz within 60 s');
}

/**
 * `concurrency` loops sending requests until stop() (or `maxRequests` in all); counts the
 * 200s. Requests cut by a killed server count as failed.
 */
export function loadUntilStopped(send: (i: number) => Promise<Response>, concurrency: number, maxRequests = 1_000_000) {
  let running = true;
  let sent = 0;
  const counts = { ok: 0, failed: 0 };
  const loops = Array.from({ length: concurrency }, async () => {
    while (running && sent < maxRequests) {
      const i = sent++;
      const res = await send(i).catch(() => null);
      if (res) await res.arrayBuffer().catch(() => {});
      if (res?.status === 200) counts.ok++;
      else counts.failed++;
    }
  });
  return {
    counts,
    async stop() {
      running = false;
      await Promise.all(loops);
      return counts;
    },
  };
}
