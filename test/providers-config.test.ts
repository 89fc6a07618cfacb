/**
 * The operator's config file end to end: `config check` exit codes, environment variables
 * winning over the file, SIGHUP reloads of a real `serve` process under load, and the CLI's
 * `providers add --kind` / `providers test` against a fake provider.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeUpstream, type FakeUpstream } from '../src/testing/fake-upstream.js';
import { startFakeCohere } from '../src/testing/fakes/cohere.js';
import type { FakeProvider } from '../src/testing/fakes/harness.js';
import { runCli } from './support/cli.js';
import { freshDatabaseUrl } from './support/db.js';
import { startTestServer } from './support/server.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'ec-config-'));
const write = (name: string, content: unknown) => {
  const p = path.join(dir, name);
  writeFileSync(p, typeof content === 'string' ? content : stringify(content));
  return p;
};

/** The environment of a child CLI: the test runner's, minus anything that would pick an upstream. */
function childEnv(extra: Record<string, string>): Record<string, string> {
  const env = { ...(process.env as Record<string, string>) };
  for (const k of ['UPSTREAM_BASE_URL', 'UPSTREAM_API_KEY', 'CONFIG_FILE']) delete env[k];
  return { ...env, LOG_LEVEL: 'silent', ...extra };
}

const cli = (env: Record<string, string>, ...args: string[]) => runCli(env, args);

const upstream = (name: string, url: string, models: unknown[]) => ({ name, kind: 'openai', base_url: url, api_key: '${FAKE_KEY}', models });

// Each CLI run starts node + tsx: over 10 s on a loaded 2-core machine.
describe('config check', { timeout: 120_000 }, () => {
  it('exits 0 on a good file, listing what it declares', async () => {
    const file = write('good.yaml', { upstreams: [upstream('a', 'http://127.0.0.1:9/v1', [{ id: 'public', model: 'provider-model' }])], tiers: [{ name: 'gold' }] });
    const r = await cli(childEnv({ FAKE_KEY: 'k' }), 'config', 'check', '--file', file);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('upstream a (openai): public -> provider-model');
    expect(r.stdout).toContain('tier gold');
  });

  it('exits 1 naming the path of every bad value, including an unset ${ENV}', async () => {
    const file = write('bad.yaml', { upstreams: [upstream('a', 'http://127.0.0.1:9/v1', ['m']), { name: 'b', kind: 'watsonx', models: ['x'] }] });
    const r = await cli(childEnv({}), 'config', 'check', '--file', file);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('upstreams[0].api_key: environment variable FAKE_KEY is not set');
    expect(r.stderr).toContain('upstreams[1].kind: must be one of');
    expect(r.stderr).toContain(file);
  });

  it('exits 1 when the named file cannot be read', async () => {
    const r = await cli(childEnv({}), 'config', 'check', '--file', path.join(dir, 'absent.yaml'));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('cannot read');
  });
});

describe('environment and file together', () => {
  it('lets the environment’s upstream win where both serve a model', async () => {
    const other = await startFakeUpstream({ apiKey: 'file-key' });
    const file = write('both.yaml', { upstreams: [{ ...upstream('file', other.url, ['text-embedding-3-small', 'fake-768']), api_key: 'file-key' }] });
    const t = await startTestServer({ env: { CONFIG_FILE: file, UPSTREAM_MODELS: 'text-embedding-3-small' } });
    try {
      const key = await t.key('both');
      const embed = (model: string) => t.server.app.inject({ method: 'POST', url: '/v1/embeddings', headers: { authorization: `Bearer ${key}` }, payload: { model, input: `x ${model}` } });
      expect((await embed('text-embedding-3-small')).statusCode).toBe(200);
      expect([t.fake.stats().calls, other.stats().calls]).toEqual([1, 0]);
      // What only the file declares is served from the file's upstream.
      expect((await embed('fake-768')).statusCode).toBe(200);
      expect([t.fake.stats().calls, other.stats().calls]).toEqual([1, 1]);
    } finally {
      await t.close();
      await other.close();
    }
  });
});

describe('SIGHUP reload of a running server', () => {
  let a: FakeUpstream;
  let b: FakeUpstream;
  let child: ChildProcess | undefined;
  let out = '';
  let base = '';
  let file = '';

  beforeAll(async () => {
    // Some latency, so requests are in flight on the old backends when the registry is swapped.
    a = await startFakeUpstream({ apiKey: 'k', latencyMs: 5, models: { 'model-a': 64 } });
    b = await startFakeUpstream({ apiKey: 'k', latencyMs: 5, models: { 'model-b': 32 } });
    // The file's own tier, unlimited, is the default one: the load below is not rate-limited.
    const tiers = [{ name: 'open', backends: ['upstream'] }];
    file = write('live.yaml', { upstreams: [upstream('a', a.url, [{ id: 'model-a', dimensions: 64 }])], tiers });
    child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'serve'], {
      env: childEnv({ CONFIG_FILE: file, FAKE_KEY: 'k', DATABASE_URL: await freshDatabaseUrl(), PORT: '0', AUTH_DISABLED: 'true', DEFAULT_TIER: 'open', LOG_LEVEL: 'info', UPSTREAM_MAX_RETRIES: '0' }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    base = await waitFor(() => /listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1]);
  }, 90_000);

  afterAll(async () => {
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
    await a?.close();
    await b?.close();
  });

  /** Polls (bounded: 2400 × 25 ms, for a start-up on a busy machine) until `probe` gives a value. */
  async function waitFor<T>(probe: () => T | undefined | Promise<T | undefined>): Promise<T> {
    for (let i = 0; i < 2400; i++) {
      const v = await probe();
      if (v !== undefined) return v;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`gave up waiting; server output:\n${out}`);
  }

  const embed = (model: string, input: string) =>
    fetch(`${base}/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model, input }) });
  const modelIds = async () => ((await (await fetch(`${base}/v1/models`)).json()) as { data: { id: string }[] }).data.map((m) => m.id);

  it('swaps in the new upstreams under load without failing a request', async () => {
    const total = 400;
    let sent = 0;
    let done = 0;
    const failures: string[] = [];
    let reloaded = false;
    const worker = async () => {
      while (sent < total) {
        const i = sent++;
        const res = await embed('model-a', `load ${i}`);
        if (res.status !== 200) failures.push(`${i}: ${res.status} ${await res.text()}`);
        else await res.arrayBuffer();
        done++;
        if (!reloaded && done >= total / 4) {
          reloaded = true;
          write('live.yaml', {
            upstreams: [upstream('a', a.url, [{ id: 'model-a', dimensions: 64 }]), upstream('b', b.url, [{ id: 'model-b', dimensions: 32 }])],
            tiers: [{ name: 'open', backends: ['upstream'] }],
          });
          child!.kill('SIGHUP');
        }
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    expect(failures).toEqual([]);
    expect(done).toBe(total);
    await waitFor(async () => ((await modelIds()).includes('model-b') ? true : undefined));
    const res = await embed('model-b', 'new model');
    expect(res.status).toBe(200);
    expect(((await res.json()) as { data: { embedding: number[] }[] }).data[0].embedding).toHaveLength(32);
    expect(out).toContain('configuration reloaded');
  }, 120_000);

  it('refuses a bad file on SIGHUP, naming the problem, and keeps serving what it had', async () => {
    write('live.yaml', { upstreams: [{ name: 'a', kind: 'nope', models: ['model-a'] }] });
    child!.kill('SIGHUP');
    await waitFor(() => (out.includes('configuration reload refused') ? true : undefined));
    expect(out).toContain('upstreams[0].kind');
    expect((await embed('model-b', 'still here')).status).toBe(200);
    expect(await modelIds()).toEqual(expect.arrayContaining(['model-a', 'model-b']));
  });
});

describe('CLI providers add --kind and providers test', { timeout: 120_000 }, () => {
  let cohere: FakeProvider;
  let env: Record<string, string>;
  beforeAll(async () => {
    cohere = await startFakeCohere({ apiKey: 'co-key-0000-1234-abcd' });
    env = childEnv({ DATABASE_URL: await freshDatabaseUrl(), MASTER_KEY: 'c'.repeat(64), PROVIDER_ALLOWLIST: '127.0.0.1', PROVIDER_ALLOW_HTTP: 'true' });
    expect((await cli(env, 'tenants', 'create', 'acme')).code).toBe(0);
  }, 120_000);
  afterAll(async () => cohere?.close());

  it('adds a Cohere provider and reports one real call: dimension, tokens, latency', async () => {
    const added = await cli({ ...env, PROVIDER_API_KEY: 'co-key-0000-1234-abcd' }, 'providers', 'add', '--tenant', 'acme', '--name', 'co', '--kind', 'cohere', '--base-url', cohere.url, '--models', 'embed-v4.0');
    expect(added.code).toBe(0);
    expect(JSON.parse(added.stdout.trim())).toMatchObject({ name: 'co', kind: 'cohere', models: ['embed-v4.0'], api_key_last4: 'abcd' });
    const tested = await cli(env, 'providers', 'test', '--tenant', 'acme', '--name', 'co');
    expect(tested.code).toBe(0);
    expect(JSON.parse(tested.stdout.trim())).toMatchObject({ ok: true, model: 'embed-v4.0', dimensions: 1536, tokens: 8, tokens_estimated: false, latency_ms: expect.any(Number) });
  });

  it('reports the mapped error (exit 1) when the key is refused, and refuses a bad option by name', async () => {
    expect((await cli({ ...env, PROVIDER_API_KEY: 'stale' }, 'providers', 'add', '--tenant', 'acme', '--name', 'old', '--kind', 'cohere', '--base-url', cohere.url, '--models', 'embed-v4.0')).code).toBe(0);
    const tested = await cli(env, 'providers', 'test', '--tenant', 'acme', '--name', 'old');
    expect(tested.code).toBe(1);
    const r = JSON.parse(tested.stdout.trim());
    expect(r).toMatchObject({ ok: false, error: { kind: 'upstream_refused', upstream_status: 401 } });
    expect(r.error.message).toContain('Your provider "old" (cohere) rejected its API key');
    const bad = await cli({ ...env, PROVIDER_API_KEY: 'x' }, 'providers', 'add', '--tenant', 'acme', '--name', 'az', '--kind', 'azure-openai', '--base-url', cohere.url, '--models', 'm', '--option', 'api_version=latest');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('options.api_version');
  });
});
