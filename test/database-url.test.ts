/**
 * DATABASE_URL in the forms psql and libpq take for a unix socket, against a PostgreSQL of the
 * test's own that listens on one: the server's pool and the CLI both reach it over the socket
 * (inet_server_addr() is NULL there), and what they print names the socket, never the password.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../src/log.js';
import { openDatabase } from '../src/store/db.js';
import { runCli } from './support/cli.js';
import { startPostgres, type RunningPostgres } from './support/services.js';

let pg: RunningPostgres;
beforeAll(async () => {
  pg = await startPostgres();
}, 60_000);
afterAll(async () => {
  await pg?.stop();
});

const FORMS = ['query host and port', 'credentials, no host', 'percent-encoded directory'] as const;
const forms = (): Record<(typeof FORMS)[number], string> => ({
  'query host and port': `postgresql:///postgres?host=${pg.socketDir}&port=${pg.port}&user=postgres`,
  'credentials, no host': `postgres://postgres:unused@/postgres?host=${encodeURIComponent(pg.socketDir)}&port=${pg.port}`,
  'percent-encoded directory': `postgresql://postgres@${encodeURIComponent(pg.socketDir)}:${pg.port}/postgres`,
});

describe('DATABASE_URL over a unix socket', () => {
  for (const name of FORMS) {
    it(`the pool connects over the socket (${name})`, async () => {
      const db = await openDatabase({ databaseUrl: forms()[name], dataDir: '/nonexistent', poolSize: 2, logger: createLogger('silent') });
      try {
        const [row] = await db.sql<{ addr: string | null; db: string }[]>`SELECT inet_server_addr()::text AS addr, current_database() AS db`;
        expect(row).toEqual({ addr: null, db: 'postgres' });
      } finally {
        await db.close();
      }
    });
  }

  it('the CLI migrates and creates a key through it, and names the socket without the password', async () => {
    const env = { ...process.env, DATABASE_URL: forms()['credentials, no host'], LOG_LEVEL: 'warn' } as Record<string, string>;
    const migrated = await runCli(env, ['migrate']);
    expect(migrated.stderr + migrated.stdout).toContain(`via socket ${pg.socketDir}/.s.PGSQL.${pg.port}`);
    expect(migrated.stderr + migrated.stdout).not.toContain('unused');
    expect(migrated.code).toBe(0);
    const created = await runCli(env, ['keys', 'create', '--tenant', 'socket-user']);
    expect(created.code).toBe(0);
    expect(created.stdout.trim().split('\n').pop()).toMatch(/^\S{20,}$/);
  }, 120_000);
});
