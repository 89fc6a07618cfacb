/**
 * Change propagation across processes, measured: real `serve` processes and the real CLI on
 * one database; each admin change is made on one side and the other server is polled until it
 * reflects it. Used by test/propagation.test.ts (few rounds, asserts) and bench/propagation.mjs
 * (more rounds, prints p50/p99). Loopback only; children are tracked and stopped by PID.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import type postgres from 'postgres';
import { freePort, spawnTracked, stopChild, waitFor } from './services.js';

const run = promisify(execFile);

export interface ServeProcess {
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** A real `embedding-cache serve` process on a free loopback port. */
export async function serveProcess(env: Record<string, string>, opts: { logFile?: string } = {}): Promise<ServeProcess> {
  const port = await freePort();
  const child = spawnTracked(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'serve'], {
    env: { ...process.env, LOG_LEVEL: 'warn', ...env, PORT: String(port), HOST: '127.0.0.1' },
    logFile: opts.logFile,
  });
  const url = `http://127.0.0.1:${port}`;
  // Generous: a fresh process compiles TypeScript and may open PGlite on a loaded machine.
  await waitFor(async () => (await fetch(`${url}/healthz`)).ok, 'serve process', 180_000, child);
  return { url, child, stop: () => stopChild(child) };
}

export interface CliResult {
  stdout: string;
  stderr: string;
  code: number;
}

/** One CLI command as a fresh process (as an operator runs it). */
export async function cli(env: Record<string, string>, ...args: string[]): Promise<CliResult> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { env: { ...process.env, LOG_LEVEL: 'warn', ...env }, timeout: 120_000 });
    return { stdout, stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout: string; stderr: string; code: number };
    return { stdout: e.stdout, stderr: e.stderr, code: e.code };
  }
}

/** A small HTTP client for one server. */
export function client(url: string, adminToken: string) {
  const call = async (method: string, path: string, body?: unknown, bearer = adminToken) => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${bearer}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  };
  const admin = async (method: string, path: string, body?: unknown) => {
    const r = await call(method, `/admin/v1${path}`, body);
    if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.json)}`);
    return r.json;
  };
  return {
    url,
    admin,
    embed: (bearer: string, input: string) => call('POST', '/v1/embeddings', { model: 'text-embedding-3-small', input }, bearer),
    models: async (bearer: string) => ((await call('GET', '/v1/models', undefined, bearer)).json.data as { id: string }[] | undefined)?.map((m) => m.id) ?? [],
    stats: (bearer: string) => call('GET', '/v1/stats', undefined, bearer),
  };
}
export type Client = ReturnType<typeof client>;

export interface Measured {
  kind: string;
  /** From the change's commit (its log entry) to the first poll of the other server that saw it, ms. */
  effectMs: number;
  /** How long the verb (API call or CLI process) took, ms. */
  verbMs: number;
  /** The other server reflected the change by the time the verb returned. */
  byReturn: boolean;
}

/**
 * Runs `action` while polling `check` every `pollMs`; returns when check first held the change
 * as applied and when it happened relative to the change's log entry.
 */
export async function timeToEffect(
  sql: postgres.Sql,
  kind: string,
  action: () => Promise<unknown>,
  check: () => Promise<boolean>,
  opts: { pollMs?: number; timeoutMs?: number } = {},
): Promise<Measured> {
  const pollMs = opts.pollMs ?? 20;
  const timeoutMs = opts.timeoutMs ?? 5000;
  const [{ seq: before }] = await sql<{ seq: string }[]>`SELECT coalesce(max(seq), 0) AS seq FROM admin_changes`;
  let seenAt: number | null = null;
  let done = false;
  const started = Date.now();
  const poller = (async () => {
    while (!done && Date.now() < started + 180_000) {
      if (await check()) {
        seenAt = Date.now();
        return;
      }
      await new Promise((r) => setTimeout(r, pollMs));
    }
  })();
  try {
    await action();
  } finally {
    // The poll in flight finishes first: a check can change what the next one sees (a miss
    // caches the vector again), so it, not a later one, tells whether the change was in place.
    done = true;
    await poller;
  }
  const returnedAt = Date.now();
  const byReturn = seenAt !== null || (await check());
  if (byReturn && seenAt === null) seenAt = Date.now();
  // Not in place by return (CHANGE_WAIT_MS ran out): keep polling, bounded, to measure when.
  for (const until = Date.now() + timeoutMs; seenAt === null && Date.now() < until; ) {
    await new Promise((r) => setTimeout(r, pollMs));
    if (await check()) seenAt = Date.now();
  }
  if (seenAt === null) throw new Error(`${kind}: the other server did not reflect the change within ${timeoutMs} ms of the verb returning`);
  const [row] = await sql<{ at_ms: number }[]>`
    SELECT (extract(epoch FROM at) * 1000)::float8 AS at_ms FROM admin_changes WHERE seq > ${before} ORDER BY seq DESC LIMIT 1`;
  const committed = row ? row.at_ms : started;
  return { kind, effectMs: Math.max(0, seenAt - committed), verbMs: returnedAt - started, byReturn };
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

export function summarize(all: Measured[]): { kind: string; n: number; p50: number; p99: number; max: number; verbP50: number; allByReturn: boolean }[] {
  const kinds = [...new Set(all.map((m) => m.kind))];
  return kinds.map((kind) => {
    const ms = all.filter((m) => m.kind === kind);
    const effect = ms.map((m) => m.effectMs);
    return {
      kind,
      n: ms.length,
      p50: percentile(effect, 50),
      p99: percentile(effect, 99),
      max: Math.max(...effect),
      verbP50: percentile(ms.map((m) => m.verbMs), 50),
      allByReturn: ms.every((m) => m.byReturn),
    };
  });
}

const notOk = (status: number) => status !== 200;

export interface ScenarioSetup {
  /** Where changes are made through the admin API (and where tenants are set up). */
  a: Client;
  /** The server that must reflect them. */
  b: Client;
  sql: postgres.Sql;
  /** Environment for CLI commands (the same database). */
  cliEnv: Record<string, string>;
  /** A tier whose backends exclude the upstream (a tenant moved to it is refused the upstream model). */
  byokOnlyTier: string;
  /** The admin API's base URL of the fake upstream as a BYOK provider target. */
  providerUrl: string;
  pollMs?: number;
}

let counter = 0;
const unique = (what: string) => `${what}-${process.pid}-${++counter}`;

/** A tenant on the unlimited tier with an API key, already verified and warmed on `b`. */
async function warmTenant(s: ScenarioSetup, text: string): Promise<{ name: string; key: string; prefix: string }> {
  const name = unique('t');
  await s.a.admin('POST', '/tenants', { name, tier: 'unlimited' });
  const k = (await s.a.admin('POST', `/tenants/${name}/keys`, {})) as { key: string; prefix: string };
  for (let i = 0; i < 2; i++) {
    const r = await s.b.embed(k.key, text);
    if (r.status !== 200) throw new Error(`warming ${name} on b: ${r.status} ${JSON.stringify(r.json)}`);
  }
  return { name, key: k.key, prefix: k.prefix };
}

export type ScenarioKind =
  | 'key_revoked_api'
  | 'key_revoked_cli'
  | 'tenant_deleted_api'
  | 'tenant_updated_api'
  | 'tier_set_api'
  | 'provider_added_api'
  | 'provider_removed_api'
  | 'cache_cleared_api'
  | 'cache_cleared_cli'
  | 'tokens_revoked_cli';

/** One change of `kind` made on a (or by the CLI), measured on b. */
export async function runScenario(s: ScenarioSetup, kind: ScenarioKind): Promise<Measured> {
  const text = unique('text');
  const t = await warmTenant(s, text);
  const measure = (action: () => Promise<unknown>, check: () => Promise<boolean>) => timeToEffect(s.sql, kind, action, check, { pollMs: s.pollMs });
  const viaCli = async (...args: string[]) => {
    const r = await cli(s.cliEnv, ...args);
    if (r.code !== 0) throw new Error(`embedding-cache ${args.join(' ')}: ${r.stderr}`);
  };
  const refused = async () => notOk((await s.b.embed(t.key, text)).status);
  const miss = async () => (await s.b.embed(t.key, text)).headers.get('x-cache') === 'miss';
  switch (kind) {
    case 'key_revoked_api':
      return measure(() => s.a.admin('DELETE', `/keys/${t.prefix}`), refused);
    case 'key_revoked_cli':
      return measure(() => viaCli('keys', 'revoke', t.prefix), refused);
    case 'tenant_deleted_api':
      return measure(() => s.a.admin('DELETE', `/tenants/${t.name}`), refused);
    case 'tenant_updated_api':
      return measure(() => s.a.admin('PATCH', `/tenants/${t.name}`, { tier: s.byokOnlyTier }), refused);
    case 'tier_set_api': {
      const tier = unique('tier');
      await s.a.admin('PUT', `/tiers/${tier}`, { requests_per_day: null, burst_per_second: null, tokens_per_minute: null, max_cached_rows: null, backends: ['upstream'] });
      await s.a.admin('PATCH', `/tenants/${t.name}`, { tier });
      if ((await s.b.embed(t.key, text)).status !== 200) throw new Error('tier_set: the tenant is refused before the change');
      return measure(() => s.a.admin('PATCH', `/tiers/${tier}`, { backends: ['byok'] }), refused);
    }
    case 'provider_added_api':
    case 'provider_removed_api': {
      const model = unique('byok-model');
      const listed = async () => (await s.b.models(t.key)).includes(model);
      const add = () => s.a.admin('POST', `/tenants/${t.name}/providers`, { name: 'own', base_url: s.providerUrl, api_key: 'sk-own-provider-key', models: [model] });
      if (kind === 'provider_added_api') {
        if (await listed()) throw new Error('provider listed before it was added');
        return measure(add, listed);
      }
      await add();
      await waitFor(listed, 'provider listed on b', 10_000);
      return measure(() => s.a.admin('DELETE', `/tenants/${t.name}/providers/own`), async () => !(await listed()));
    }
    case 'cache_cleared_api':
      return measure(() => s.a.admin('DELETE', `/tenants/${t.name}/cache`), miss);
    case 'cache_cleared_cli':
      return measure(() => viaCli('clear', '--tenant', t.name), miss);
    case 'tokens_revoked_cli': {
      const { token } = (await s.a.admin('POST', `/tenants/${t.name}/tokens`, { ttl_seconds: 600 })) as { token: string };
      if ((await s.b.embed(token, text)).status !== 200) throw new Error('tokens_revoked: the token is refused before the change');
      return measure(() => viaCli('tokens', 'revoke', '--tenant', t.name), async () => notOk((await s.b.embed(token, text)).status));
    }
  }
}
