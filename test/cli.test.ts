import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { writeFileSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeUpstream, type FakeUpstream } from '../src/testing/fake-upstream.js';
import { freshDatabaseUrl } from './support/db.js';
import { createAccountService } from '../src/admin/accounts.js';
import { loadConfig } from '../src/config.js';
import { AuthLimits } from '../src/limits/auth-limits.js';

const run = promisify(execFile);
let env: Record<string, string>;
let fake: FakeUpstream;

afterAll(async () => fake?.close());
beforeAll(async () => {
  fake = await startFakeUpstream({ apiKey: 'up' });
  env = {
    UPSTREAM_BASE_URL: fake.url,
    UPSTREAM_API_KEY: 'up',
    ...(process.env as Record<string, string>),
    DATABASE_URL: await freshDatabaseUrl(),
    // Its own DATA_DIR: no server.json of a server someone runs in the checkout is found.
    DATA_DIR: mkdtempSync(path.join(os.tmpdir(), 'ec-cli-data-')),
    MASTER_KEY: 'b'.repeat(64),
    ADMIN_TOKEN: 'cli-admin-token-0123456789',
    LOG_LEVEL: 'silent',
    // A loaded machine's lookups can pass the 500 ms default, and a timed-out lookup is a miss: seed's "all cached" would then fail.
    STORE_LOOKUP_TIMEOUT_MS: '60000',
  };
});

async function cli(...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { env, timeout: 120_000, maxBuffer: 64 * 1024 * 1024 });
    return { stdout, stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout: string; stderr: string; code: number };
    return { stdout: e.stdout, stderr: e.stderr, code: e.code };
  }
}
const lastLine = (s: string) => s.trim().split('\n').pop()!;
// Each command is a fresh Node process: bounds are generous for a loaded 2-core machine.

describe('embedding-cache CLI', () => {
  it('migrate is safe to run twice', async () => {
    const first = await cli('migrate');
    expect(first.stdout).toMatch(/^applied \d+ migration\(s\): 001_init\.sql, .*003_unlimited_tier\.sql/);
    expect(first.stderr).toMatch(/^database: PostgreSQL at postgres/m);
    const again = await cli('migrate');
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/^schema is up to date \(\d+ migrations applied earlier; nothing to do\)/);
  }, 240_000);

  it('keys create prints the key alone on its last line; list shows only its prefix; revoke revokes', async () => {
    const created = await cli('keys', 'create', '--tenant', 'acme');
    expect(created.code).toBe(0);
    const key = lastLine(created.stdout);
    expect(key).toMatch(/^ec_[A-Za-z0-9_-]{32}$/);
    const list = await cli('keys', 'list', '--tenant', 'acme');
    expect(list.stdout).toContain(key.slice(0, 11));
    expect(list.stdout).not.toContain(key);
    expect((await cli('keys', 'revoke', key.slice(0, 11))).code).toBe(0);
    expect((await cli('keys', 'list', '--tenant', 'acme')).stdout).toMatch(/\t\d{4}-\d\d-\d\dT[^\t]*Z\s*$/m);
    const again = await cli('keys', 'revoke', key.slice(0, 11));
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/No live key/);
  }, 240_000);

  it('manages tiers, tenants, providers and tokens', async () => {
    expect((await cli('tiers', 'set', 'mini', '--requests-per-day', '10', '--burst-per-second', 'unlimited', '--tokens-per-minute', '1000', '--max-cached-rows', '5', '--backends', 'byok')).code).toBe(0);
    expect((await cli('tiers', 'list')).stdout).toMatch(/^mini\t10\t∞\t1000\t5\tbyok$/m);
    expect((await cli('tiers', 'set', 'bad', '--requests-per-day', '1', '--burst-per-second', '1', '--tokens-per-minute', '1', '--max-cached-rows', '1', '--backends', 'gpu')).stderr).toMatch(/Unknown backends: gpu/);
    expect((await cli('tenants', 'create', 'globex', '--tier', 'mini')).stdout).toMatch(/tenant globex/);
    expect((await cli('tenants', 'update', 'globex', '--share-public', 'true')).stdout).toMatch(/share_public true/);
    env.PROVIDER_API_KEY = 'sk-cli-provider-key-1234';
    const added = await cli('providers', 'add', '--tenant', 'globex', '--name', 'openai', '--base-url', 'https://api.openai.com/v1', '--models', 'text-embedding-3-small');
    expect(added.code).toBe(0);
    expect(JSON.parse(added.stdout)).toMatchObject({ name: 'openai', api_key_last4: '1234' });
    expect(added.stdout).not.toContain('sk-cli-provider-key');
    const refused = await cli('providers', 'add', '--tenant', 'globex', '--name', 'evil', '--base-url', 'https://169.254.169.254/v1', '--models', 'm');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/169\.254/);
    expect((await cli('providers', 'list', '--tenant', 'globex')).stdout).toContain('"api_key_last4":"1234"');
    const token = lastLine((await cli('tokens', 'tenant', '--tenant', 'globex', '--ttl', '60')).stdout);
    expect(token.split('.')).toHaveLength(3);
    expect((await cli('stats', '--tenant', 'globex', '--json')).stdout).toContain('"tenant": "globex"');
    expect((await cli('clear', '--tenant', 'globex')).stdout).toMatch(/Deleted 0 cached vectors/);
    expect((await cli('tenants', 'delete', 'globex')).code).toBe(0);
    expect((await cli('stats', '--tenant', 'globex')).code).toBe(1);
  }, 240_000);

  it('seeds a cache from a file, exports it and imports it into another tenant', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ec-seed-'));
    const file = path.join(dir, 'texts.txt');
    writeFileSync(file, Array.from({ length: 1200 }, (_, i) => `seed text ${i % 1000}`).join('\n') + '\n');
    await cli('tenants', 'create', 'seeder', '--tier', 'pro');
    const seeded = await cli('seed', '--tenant', 'seeder', '--model', 'text-embedding-3-small', '--file', file, '--batch', '100');
    expect(seeded.code).toBe(0);
    // 1200 lines, 1000 distinct: the 200 repeats may be coalesced or hits, never computed twice
    expect(seeded.stdout).toMatch(/seeded 1200 inputs .* in this process/);
    // Piped (not a terminal): no bar drawn, the summary line always.
    expect(seeded.stderr).not.toMatch(/\u001b\[|█|░/);
    expect(fake.stats().inputs).toBe(1000);
    const again = await cli('seed', '--tenant', 'seeder', '--model', 'text-embedding-3-small', '--file', file);
    expect(again.stdout).toMatch(/seeded 1200 inputs \(1200 already cached, 0 computed\)/);
    expect(fake.stats().inputs).toBe(1000);

    const exported = await cli('export', '--tenant', 'seeder');
    const lines = exported.stdout.trim().split('\n');
    expect(lines).toHaveLength(1000);
    expect(exported.stderr.trim().split('\n').pop()).toBe('exported 1000 rows of seeder');
    expect(exported.stdout).not.toContain('seed text');
    const dump = path.join(dir, 'dump.jsonl');
    writeFileSync(dump, exported.stdout);
    expect((await cli('import', '--tenant', 'copy', '--file', dump)).stdout).toMatch(/imported 1000 of 1000 rows/);
    expect((await cli('import', '--tenant', 'copy', '--file', dump)).stdout).toMatch(/imported 0 of 1000 rows/);
    const sql = postgres(env.DATABASE_URL, { max: 1 });
    const [a, b] = await Promise.all(['seeder', 'copy'].map(async (n) => sql`SELECT input_hash, vector FROM embeddings e JOIN tenants t ON t.id = e.tenant_id WHERE t.name = ${n} ORDER BY input_hash`));
    await sql.end();
    expect(b.map((r) => r.vector.toString('hex'))).toEqual(a.map((r) => r.vector.toString('hex')));
    writeFileSync(dump, 'not json\n');
    expect((await cli('import', '--tenant', 'copy', '--file', dump)).stderr).toMatch(/line 1 is not JSON/);
  }, 240_000);

  it('models optimize writes the GPU variant, or says exactly what to install', async () => {
    const { cpSync, existsSync } = await import('node:fs');
    const dir = path.join(mkdtempSync(path.join(os.tmpdir(), 'ec-opt-')), 'tiny-bert');
    cpSync('test/fixtures/tiny-bert', dir, { recursive: true });
    const r = await cli('models', 'optimize', dir, '--fp16');
    const hasOrt = await run('python3', ['-c', 'import onnx, onnxruntime']).then(() => true, () => false);
    if (hasOrt) {
      expect(r.code).toBe(0);
      expect(existsSync(path.join(dir, 'onnx', 'model_optimized_fp16.onnx'))).toBe(true);
    } else {
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/pip install onnx onnxruntime/);
    }
  }, 240_000);

  it('accounts list shows self-service accounts; accounts revoke ends their sessions', async () => {
    await cli('migrate');
    const sql = postgres(env.DATABASE_URL, { max: 1, onnotice: () => {} });
    try {
      const cfg = loadConfig({ ...env, SIGNUP_ENABLED: 'true', JWT_SECRET: 'cli-jwt-secret-0123456789' });
      const limits = new AuthLimits(null, 'cli', { perAddress: 10, perEmail: 10, windowSeconds: 60 });
      const accounts = createAccountService({ sql, config: cfg, limits: { signup: limits, login: limits }, onChange: () => {} });
      await accounts.signup({ email: 'cli.user@example.com', password: 'a long enough passphrase' }, '127.0.0.1');
      await accounts.login({ email: 'cli.user@example.com', password: 'a long enough passphrase' }, '127.0.0.1');
    } finally {
      await sql.end();
    }
    const list = await cli('accounts', 'list');
    expect(list.stdout).toMatch(/^cli\.user@example\.com\tcli\.user\t\S+\t\S+\t\S+\t1$/m);
    const revoked = await cli('accounts', 'revoke', '--email', 'CLI.User@example.com');
    expect(revoked.code).toBe(0);
    expect(revoked.stdout).toMatch(/Revoked 1 session/);
    expect((await cli('accounts', 'list')).stdout).toMatch(/^cli\.user@example\.com\t.*\t0$/m);
    const unknown = await cli('accounts', 'revoke', '--email', 'nobody@example.com');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/No account with email/);
  }, 240_000);

  it('names every bad configuration value and exits non-zero', async () => {
    const saved = env;
    env = { ...env, PORT: 'eighty', EMBED_DEVICE: 'tpu', DATABASE_URL: 'mysql://x' };
    const r = await cli('migrate');
    env = saved;
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/PORT/);
    expect(r.stderr).toMatch(/EMBED_DEVICE/);
    expect(r.stderr).toMatch(/DATABASE_URL: must be a postgres/);
  }, 240_000);
});
