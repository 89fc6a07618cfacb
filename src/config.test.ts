import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { ConfigError, connectionsPerProcess, loadConfig } from './config.js';

describe('configuration', () => {
  it('has defaults a fresh machine can run on', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({ host: '127.0.0.1', port: 8080, dataDir: './.embedding-cache', databaseUrl: undefined, authDisabled: false });
    expect(c.local.device).toBe('cpu');
    expect(c.upstream.models).toContain('text-embedding-3-small');
  });

  it('names every bad value at once', () => {
    let e: ConfigError | undefined;
    try {
      loadConfig({ PORT: '99999', EMBED_DEVICE: 'tpu', ADMIN_TOKEN: 'short', MASTER_KEY: 'nothex' });
    } catch (err) {
      e = err as ConfigError;
    }
    expect(e).toBeInstanceOf(ConfigError);
    expect(e!.problems.join('\n')).toMatch(/PORT/);
    expect(e!.problems.join('\n')).toMatch(/EMBED_DEVICE/);
    expect(e!.problems.join('\n')).toMatch(/ADMIN_TOKEN/);
  });

  it('checks MASTER_KEY and the provider allowlist after the schema', () => {
    expect(() => loadConfig({ MASTER_KEY: 'nothex' })).toThrow(/MASTER_KEY/);
    expect(loadConfig({ MASTER_KEY: 'f'.repeat(64) }).masterKeys?.currentId).toBe('k1');
    expect(loadConfig({ PROVIDER_ALLOWLIST: '127.0.0.1,10.0.0.0/8' }).ssrf.allowlist).toHaveLength(2);
  });

  it('treats empty values as unset and lists as comma-separated', () => {
    const c = loadConfig({ PORT: '', UPSTREAM_MODELS: 'a, b,,c', JWT_SECRET: '' });
    expect(c.port).toBe(8080);
    expect(c.upstream.models).toEqual(['a', 'b', 'c']);
  });

  it('keeps signup off by default and refuses it without a secret to sign logins', () => {
    expect(loadConfig({}).accounts.signupEnabled).toBe(false);
    expect(() => loadConfig({ SIGNUP_ENABLED: 'true' })).toThrow(/SIGNUP_ENABLED.*JWT_SECRET/);
    expect(loadConfig({ SIGNUP_ENABLED: 'true', JWT_SECRET: 'x'.repeat(16) }).accounts).toMatchObject({ signupEnabled: true, accessTokenTtlSeconds: 900 });
  });

  it('runs a worker per core on PostgreSQL, one process on the embedded store, and refuses several there', () => {
    const pg = 'postgres://u@127.0.0.1/db';
    expect(loadConfig({ DATABASE_URL: pg })).toMatchObject({ workers: os.availableParallelism(), workersSet: false });
    expect(loadConfig({ DATABASE_URL: pg, WORKERS: '3' })).toMatchObject({ workers: 3, workersSet: true });
    expect(loadConfig({})).toMatchObject({ workers: 1, workersSet: false });
    expect(loadConfig({ WORKERS: '1' }).workers).toBe(1);
    expect(() => loadConfig({ WORKERS: '2' })).toThrow(/WORKERS: the embedded store is opened by one process only; set DATABASE_URL/);
    expect(() => loadConfig({ DATABASE_URL: pg, WORKERS: '0' })).toThrow(ConfigError);
  });

  it('shares 10 connections per machine among the workers unless DATABASE_POOL_SIZE says otherwise', () => {
    const pg = 'postgres://u@127.0.0.1/db';
    const pool = (env: Record<string, string>) => connectionsPerProcess(loadConfig(env));
    expect(pool({})).toBe(10);
    expect(pool({ DATABASE_URL: pg, WORKERS: '2' })).toBe(5);
    // 16 workers x 2 = 32 connections, not 160 (PostgreSQL's default max_connections is 100).
    expect(pool({ DATABASE_URL: pg, WORKERS: '16' })).toBe(2);
    expect(pool({ DATABASE_URL: pg, WORKERS: '16', DATABASE_POOL_SIZE: '8' })).toBe(8);
    // serve's single process (a local model) gets the whole machine's 10.
    expect(connectionsPerProcess({ ...loadConfig({ DATABASE_URL: pg, WORKERS: '4' }), workers: 1 })).toBe(10);
  });
});
