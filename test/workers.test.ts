/**
 * `serve` with WORKERS=2 as a real process tree (a primary and two node:cluster workers) on a
 * fresh PostgreSQL database: both workers answer, an identical miss sent to both at once is
 * computed once, a rate limit of N admits exactly N across the workers, usage totals are exact,
 * a SIGKILLed worker is replaced, SIGTERM drains every worker and exits 0.
 *
 * Requests are pinned to a worker by keep-alive connections (one agent = one socket = one
 * worker, checked on every answer through x-worker-pid). The upstream is the shipped fake
 * behind a gate this file opens, so "at once" is arranged, not left to timing.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateApiKey } from '../src/auth/api-key.js';
import { createLogger } from '../src/log.js';
import { insertApiKey } from '../src/store/api-keys.js';
import { openDatabase, type Database } from '../src/store/db.js';
import { ensureTenant } from '../src/store/tenants.js';
import { upsertTier } from '../src/store/tiers.js';
import { startFakeUpstream, type FakeUpstream } from '../src/testing/fake-upstream.js';
import { freshDatabaseUrl } from './support/db.js';
import { freePort, sleep, spawnTracked, stopChild, waitFor } from './support/services.js';

const MODEL = 'text-embedding-3-small';
const LIMIT = 10;

/** The fake upstream behind a gate: calls are counted per input and held while the gate is shut. */
async function gatedUpstream(fake: FakeUpstream) {
  const seen = new Map<string, number>();
  let open = true;
  let waiting: (() => void)[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      try {
        const parsed = JSON.parse(body.toString('utf8')) as { input?: unknown };
        for (const i of Array.isArray(parsed.input) ? parsed.input : [parsed.input]) if (typeof i === 'string') seen.set(i, (seen.get(i) ?? 0) + 1);
      } catch {
        /* forwarded as it is: the fake answers what is wrong */
      }
      const forward = async () => {
        const r = await fetch(new URL(req.url ?? '/', fake.url), { method: req.method, headers: { 'content-type': 'application/json', authorization: req.headers.authorization ?? '' }, body });
        res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'application/json' });
        res.end(Buffer.from(await r.arrayBuffer()));
      };
      const go = () => void forward().catch(() => res.destroy());
      if (open) go();
      else waiting.push(go);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
    calls: (input: string) => seen.get(input) ?? 0,
    shut: () => void (open = false),
    release: () => {
      open = true;
      const w = waiting;
      waiting = [];
      for (const go of w) go();
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

interface Answer {
  status: number;
  pid: number;
  body: string;
}

/** One request on `agent`'s socket (keep-alive, one socket: always the same worker). */
function send(agent: http.Agent, port: number, method: string, p: string, opts: { key?: string; body?: unknown } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const data = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const req = http.request(
      { host: '127.0.0.1', port, method, path: p, agent, headers: { ...(opts.key ? { authorization: `Bearer ${opts.key}` } : {}), ...(data ? { 'content-type': 'application/json' } : {}) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, pid: Number(res.headers['x-worker-pid']), body: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('error', reject);
    // A bounded wait: a hung answer fails the test with a reason instead of its timeout.
    req.setTimeout(20_000, () => req.destroy(new Error(`${method} ${p}: no answer within 20 s`)));
    req.end(data);
  });
}

/** A keep-alive socket to a worker other than those in `not` (new connections are dealt round-robin). */
async function pinned(port: number, not: Set<number>, attempts = 40): Promise<{ agent: http.Agent; pid: number }> {
  for (let i = 0; i < attempts; i++) {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const r = await send(agent, port, 'GET', '/healthz').catch(() => null);
    if (r?.status === 200 && r.pid > 0 && !not.has(r.pid)) return { agent, pid: r.pid };
    agent.destroy();
    await sleep(100);
  }
  throw new Error(`no connection reached a worker other than ${[...not].join(', ')}`);
}

async function addKey(db: Database, tenant: string, tier: string): Promise<{ key: string; tenantId: number }> {
  const t = await ensureTenant(db.sql, tenant, tier);
  const k = generateApiKey();
  await insertApiKey(db.sql, { tenantId: t.id, prefix: k.prefix, keyHash: k.hash, name: null });
  return { key: k.key, tenantId: t.id };
}

async function usageOf(db: Database, tenantId: number) {
  const [u] = await db.sql<{ requests: number; inputs: number; hits: number; misses: number }[]>`
    SELECT coalesce(sum(requests), 0)::int AS requests, coalesce(sum(inputs), 0)::int AS inputs,
           coalesce(sum(hits), 0)::int AS hits, coalesce(sum(misses), 0)::int AS misses
    FROM usage_daily WHERE tenant_id = ${tenantId}`;
  return u;
}

function metric(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ')[1]) : 0;
}

describe('serve with WORKERS=2', () => {
  let fake: FakeUpstream;
  let gate: Awaited<ReturnType<typeof gatedUpstream>>;
  let db: Database;
  let child: ChildProcess;
  let port: number;
  let dataDir: string;
  let a: { agent: http.Agent; pid: number };
  let b: { agent: http.Agent; pid: number };
  let user: { key: string; tenantId: number };
  let limited: { key: string; tenantId: number };
  /** What the tenant `user` was answered 200 for: usage must add up to exactly this. */
  const answered = { requests: 0, inputs: 0 };
  /** Every 200 to POST /v1/embeddings, whichever worker and tenant. */
  let embedded = 0;
  const embed = async (w: { agent: http.Agent }, key: string, input: string | string[]) => {
    const r = await send(w.agent, port, 'POST', '/v1/embeddings', { key, body: { model: MODEL, input } });
    if (r.status === 200) embedded++;
    if (key === user.key && r.status === 200) {
      answered.requests++;
      answered.inputs += Array.isArray(input) ? input.length : 1;
    }
    return r;
  };

  beforeAll(async () => {
    fake = await startFakeUpstream({ apiKey: 'up' });
    gate = await gatedUpstream(fake);
    // Fresh: the primary applies every migration once, before any worker starts.
    const databaseUrl = await freshDatabaseUrl();
    port = await freePort();
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'ec-workers-'));
    child = spawnTracked(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'serve', '--workers', '2'], {
      env: { ...process.env, LOG_LEVEL: 'info', DATABASE_URL: databaseUrl, DATA_DIR: dataDir, UPSTREAM_BASE_URL: gate.url, UPSTREAM_API_KEY: 'up', PORT: String(port), HOST: '127.0.0.1', USAGE_FLUSH_MS: '50' },
      logFile: path.join(dataDir, 'serve.log'),
    });
    await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).ok, 'serve --workers 2', 180_000, child);
    db = await openDatabase({ databaseUrl, dataDir: '/nonexistent', poolSize: 1, logger: createLogger('silent') });
    await upsertTier(db.sql, { name: 'unlimited', requestsPerDay: null, burstPerSecond: null, tokensPerMinute: null, maxCachedRows: null, backends: ['upstream'] });
    await upsertTier(db.sql, { name: 'ten', requestsPerDay: LIMIT, burstPerSecond: null, tokensPerMinute: null, maxCachedRows: null, backends: ['upstream'] });
    user = await addKey(db, 'user', 'unlimited');
    limited = await addKey(db, 'limited', 'ten');
    a = await pinned(port, new Set([child.pid!]));
    b = await pinned(port, new Set([child.pid!, a.pid]));
  }, 240_000);

  afterAll(async () => {
    a?.agent.destroy();
    b?.agent.destroy();
    if (child) await stopChild(child, 'SIGKILL');
    await db?.close();
    await gate?.close();
    await fake?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('answers from two worker processes, and CLI commands find the primary', async () => {
    expect(a.pid).not.toBe(b.pid);
    for (const w of [a, b]) {
      const r = await embed(w, user.key, `hello from ${w.pid}`);
      expect(r.status).toBe(200);
      expect(r.pid).toBe(w.pid);
    }
    const file = JSON.parse(readFileSync(path.join(dataDir, 'server.json'), 'utf8')) as { pid: number; url: string };
    expect(file.pid).toBe(child.pid);
    expect((await fetch(`${file.url}/healthz`)).ok).toBe(true);
    const [{ n }] = await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM schema_migrations`;
    expect(n).toBeGreaterThan(0);
  });

  it('passes SIGHUP to every worker: each reloads its configuration and keeps serving', async () => {
    process.kill(child.pid!, 'SIGHUP');
    const reloadedBy = () =>
      new Set(
        readFileSync(path.join(dataDir, 'serve.log'), 'utf8')
          .split('\n')
          .filter((l) => l.includes('"configuration reloaded"'))
          .map((l) => (JSON.parse(l) as { pid: number }).pid),
      );
    await waitFor(async () => reloadedBy().size === 2, 'both workers reloading', 30_000);
    expect(reloadedBy()).toEqual(new Set([a.pid, b.pid]));
    for (const w of [a, b]) expect((await send(w.agent, port, 'GET', '/healthz')).pid).toBe(w.pid);
  });

  it('computes an identical miss sent to both workers at once only once', async () => {
    const input = `coalesced across workers ${Date.now()}`;
    gate.shut();
    const first = embed(a, user.key, input);
    await waitFor(async () => gate.calls(input) === 1, 'the first worker calling the upstream', 30_000);
    const second = embed(b, user.key, input);
    // Worker b says it waits on worker a (its /metrics, on a second socket to it): only then open the gate.
    const bToo = await pinned(port, new Set([child.pid!, a.pid]));
    try {
      await waitFor(async () => metric((await send(bToo.agent, port, 'GET', '/metrics')).body, 'ec_cluster_inflight_waited_total') >= 1, 'worker b waiting on worker a', 30_000);
    } finally {
      bToo.agent.destroy();
      gate.release();
    }
    const [ra, rb] = await Promise.all([first, second]);
    expect([ra.status, rb.status]).toEqual([200, 200]);
    expect([ra.pid, rb.pid]).toEqual([a.pid, b.pid]);
    expect(gate.calls(input)).toBe(1);
    const vector = (r: Answer) => (JSON.parse(r.body) as { data: { embedding: number[] }[] }).data[0].embedding;
    expect(vector(rb)).toEqual(vector(ra));
    // And afterwards a hit on either worker, still one upstream call.
    expect((await embed(b, user.key, input)).status).toBe(200);
    expect(gate.calls(input)).toBe(1);
  });

  it(`admits exactly ${LIMIT} requests of a ${LIMIT}-per-day tier across both workers`, async () => {
    const answers = await Promise.all(Array.from({ length: 2 * LIMIT }, (_, i) => embed(i % 2 === 0 ? a : b, limited.key, `limited ${i % 3}`)));
    const ok = answers.filter((r) => r.status === 200);
    expect(ok.length).toBe(LIMIT);
    expect(answers.filter((r) => r.status === 429).length).toBe(LIMIT);
    // Both workers served and refused: the count is the machine's, not each worker's.
    expect(new Set(answers.map((r) => r.pid))).toEqual(new Set([a.pid, b.pid]));
  });

  it('answers /metrics for the whole machine, whichever worker the scrape reaches', async () => {
    // Both workers have served embeddings by now (the tests above check which answered).
    const served = (text: string) =>
      text
        .split('\n')
        .filter((l) => l.startsWith('ec_http_request_duration_seconds_count{') && l.includes('route="/v1/embeddings"') && l.includes('method="POST"') && l.includes('status="200"'))
        .reduce((n, l) => n + Number(l.split(' ').at(-1)), 0);
    await waitFor(async () => served((await send(a.agent, port, 'GET', '/metrics')).body) === embedded, 'the sum of both workers', 30_000);
    const [fromA, fromB] = [await send(a.agent, port, 'GET', '/metrics'), await send(b.agent, port, 'GET', '/metrics')];
    expect([fromA.pid, fromB.pid]).toEqual([a.pid, b.pid]);
    expect(served(fromA.body)).toBe(embedded);
    expect(served(fromB.body)).toBe(embedded);
    // Worker b waited on worker a above: a's answer carries b's counter too.
    expect(metric(fromA.body, 'ec_cluster_inflight_waited_total')).toBeGreaterThanOrEqual(1);
  });

  it('counts usage exactly across workers, replaces a SIGKILLed worker, and drains both on SIGTERM', async () => {
    for (let i = 0; i < 10; i++) expect((await embed(i % 2 === 0 ? a : b, user.key, [`usage ${i % 4}`, `usage x${i}`])).status).toBe(200);
    // Each worker writes its usage every USAGE_FLUSH_MS: wait until both have, then kill one.
    await waitFor(async () => (await usageOf(db, user.tenantId)).requests === answered.requests, 'usage written by both workers', 30_000);
    process.kill(a.pid, 'SIGKILL');
    a.agent.destroy();
    // The replacement starts like any worker (seconds on a loaded machine): try for up to ~2 minutes.
    const c = await pinned(port, new Set([child.pid!, a.pid, b.pid]), 1200);
    expect(child.exitCode).toBeNull();
    for (let i = 0; i < 6; i++) expect((await embed(i % 2 === 0 ? c : b, user.key, `after the kill ${i % 2}`)).status).toBe(200);
    c.agent.destroy();
    b.agent.destroy();
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    const u = await usageOf(db, user.tenantId);
    expect(u.requests).toBe(answered.requests);
    expect(u.inputs).toBe(answered.inputs);
    expect(u.hits + u.misses).toBe(answered.inputs);
  }, 240_000);
});
