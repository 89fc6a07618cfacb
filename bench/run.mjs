#!/usr/bin/env node
/**
 * The benchmark harness:  npm run bench -- <scenario|all> [options]
 *
 * Starts everything it needs itself (a throw-away PostgreSQL server, the shipped fake upstream,
 * the server under test from dist/, the reference servers), drives load from a separate
 * process (bench/lib/load.mjs: wrk or autocannon), and runs every scenario side by side with its
 * reference in the same run. Prints a markdown report, writes bench/results/<timestamp>.json
 * and bench/results/latest.md (latest-<scenarios>.md for a partial run). Loopback only;
 * every load run is bounded in time.
 *
 * Scenarios: hit, store-hit, miss, mixed, local, seed, soak, ingest, workers (all = hit store-hit miss mixed local seed).
 *   ingest (bench/lib/ingest.mjs): bulk load on PostgreSQL and on the embedded store, inputs/s ratio and RSS per 100k rows
 * Every server runs WORKERS=1 except in `workers`, which compares WORKERS=1 with WORKERS=<cores>.
 * Options:
 *   --duration <s>        seconds per measurement (default 10; 3 with --quick)
 *   --quick               short runs, 10k seed texts, a smaller warmed set
 *   --connections <n>     concurrent connections of the load generator (default 32)
 *   --minutes <n>         soak length (default 10)
 *   --seed-texts <n>      texts for `seed` (default 100000; 10000 with --quick)
 *   --ingest-texts <n>    texts per store for `ingest` (default 100000; 20000 with --quick; use --upstream-latency 0)
 *   --upstream-latency <ms>  fake upstream latency (default 20)
 *   --rounds <n>          hit: alternate server and ceiling n times, report the median (default 1)
 *   --variants a,b        hit: only these requests (n1-base64-768, n64-float-1536, ...); store-hit: n1-base64-1536, n64-base64-1536
 *   --accept-encoding v   hit: the server's accept-encoding (default the OpenAI SDK's 'gzip, deflate, br';
 *                         'none' sends none); each round also measures the server without it (identity)
 *   --profile             run the server under `node --cpu-prof` and summarise the profile
 *   --load-gen wrk|autocannon  closed-loop load with one fixed body (hit, store-hit, workers):
 *                         wrk (default when installed: apt-get install wrk) or autocannon;
 *                         unique and mixed bodies always use autocannon
 *   --jit-warmup <s>      miss: an unmeasured run through each server first, so that V8 has
 *                         optimised it (default 20; 10 with --quick; 0 for none)
 *   --store embedded      the main server (hit, miss, mixed, ...) on the embedded store (PGlite in
 *                         DATA_DIR, no DATABASE_URL) instead of the bench's PostgreSQL
 *   --no-build            never rebuild dist/, even when src/ is newer
 *   --no-write            print only; write no files
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, killAllTracked, rssOf, sleep, spawnTracked, startPostgres, stopChild, tailOf, waitFor, canConnect, waitHttp } from './lib/services.mjs';
import { text } from './lib/texts.mjs';
import { profileMarkdown, summariseProfile } from './lib/profile.mjs';
import { scenarioIngest } from './lib/ingest.mjs';
import { ensurePeerGateway, peerGatewayHeaders, startPeerGateway } from './lib/peer-gateway.mjs';
import { enableStatementStats, pgActivity, pgPerMiss, statementMeans } from './lib/pg-activity.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BENCH = path.join(ROOT, 'bench');
const CLI = path.join(ROOT, 'dist', 'cli.js');
// What Node's fetch, hence the OpenAI SDK, sends on every request: the hit scenario sends it too.
const SDK_ACCEPT_ENCODING = 'gzip, deflate, br';
const SCENARIOS = ['hit', 'store-hit', 'miss', 'mixed', 'local', 'seed', 'soak', 'ingest', 'workers'];
const ALL = ['hit', 'store-hit', 'miss', 'mixed', 'local', 'seed'];

// ---------------------------------------------------------------------------------------------
// Options

/** Debian's `wrk` (apt-get install wrk), when installed: the default load generator for fixed bodies. */
function wrkOnPath() {
  return spawnSync('wrk', ['--version'], { stdio: 'ignore' }).error === undefined;
}

function parseArgs(argv) {
  const o = { store: 'postgres', loadGen: wrkOnPath() ? 'wrk' : 'autocannon', acceptEncoding: SDK_ACCEPT_ENCODING, rounds: 1, scenarios: [], quick: false, duration: null, connections: 32, minutes: 10, seedTexts: null, upstreamLatency: 20, profile: false, build: true, write: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    const num = () => {
      const v = Number(val());
      if (!Number.isFinite(v) || v <= 0) throw new Error(`${a} needs a positive number`);
      return v;
    };
    if (a === '--quick') o.quick = true;
    else if (a === '--duration') o.duration = num();
    else if (a === '--connections') o.connections = Math.round(num());
    else if (a === '--minutes') o.minutes = num();
    else if (a === '--seed-texts') o.seedTexts = Math.round(num());
    else if (a === '--ingest-texts') o.ingestTexts = Math.round(num());
    else if (a === '--upstream-latency') o.upstreamLatency = Number(val());
    else if (a === '--profile') o.profile = true;
    else if (a === '--rounds') o.rounds = Math.round(num());
    else if (a === '--variants') o.variants = val().split(',').map((v) => v.trim()).filter(Boolean);
    else if (a === '--accept-encoding') o.acceptEncoding = val() === 'none' ? null : argv[i];
    else if (a === '--jit-warmup') {
      o.jitWarmup = Number(val());
      if (!Number.isFinite(o.jitWarmup) || o.jitWarmup < 0) throw new Error('--jit-warmup needs seconds (0 for none)');
    }
    else if (a === '--store') o.store = val();
    else if (a === '--load-gen') {
      o.loadGen = val();
      if (!['wrk', 'autocannon'].includes(o.loadGen)) throw new Error('--load-gen is wrk or autocannon');
    }
    else if (a === '--no-build') o.build = false;
    else if (a === '--no-write') o.write = false;
    else if (a === '--help' || a === '-h') o.help = true;
    else if (a === 'all') o.scenarios.push(...ALL);
    else if (SCENARIOS.includes(a)) o.scenarios.push(a);
    else throw new Error(`unknown argument ${a} (scenarios: ${SCENARIOS.join(', ')}, all)`);
  }
  o.duration ??= o.quick ? 3 : 10;
  o.warmup = o.quick ? 1 : 2;
  o.jitWarmup ??= o.quick ? 10 : 20;
  o.seedTexts ??= o.quick ? 10_000 : 100_000;
  o.mixedWarm = o.quick ? 2_000 : 10_000;
  o.scenarios = [...new Set(o.scenarios)];
  return o;
}

const USAGE = `usage: npm run bench -- <${SCENARIOS.join('|')}|all> [--duration s] [--quick] [--connections n] [--minutes n] [--seed-texts n] [--upstream-latency ms] [--rounds n] [--variants n1-base64-768,...] [--accept-encoding 'gzip, deflate, br'|none] [--profile] [--store postgres|embedded] [--load-gen wrk|autocannon] [--jit-warmup s] [--no-build] [--no-write]`;

// ---------------------------------------------------------------------------------------------
// Build

function newestMtime(dir, filter) {
  let newest = 0;
  if (!existsSync(dir)) return 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestMtime(p, filter));
    else if (filter(e.name)) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

function ensureBuild(allowBuild) {
  const srcNewest = newestMtime(path.join(ROOT, 'src'), (n) => n.endsWith('.ts') && !n.endsWith('.test.ts'));
  const distNewest = newestMtime(path.join(ROOT, 'dist'), (n) => n.endsWith('.js'));
  const stale = !existsSync(CLI) || srcNewest > distNewest;
  if (!stale) return { built: false, stale: false };
  if (!allowBuild) {
    if (!existsSync(CLI)) throw new Error('dist/ is missing and --no-build was given: run `npm run build`.');
    log('dist/ is older than src/, and --no-build was given: measuring the existing dist/.');
    return { built: false, stale: true };
  }
  log(existsSync(CLI) ? 'src/ is newer than dist/: running `npm run build`' : 'dist/ is missing: running `npm run build`');
  const r = spawnSync('npm', ['run', 'build'], { cwd: ROOT, encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) {
    const out = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n').slice(-15).join('\n');
    if (!existsSync(CLI)) throw new Error(`npm run build failed:\n${out}`);
    log(`npm run build failed; measuring the existing dist/ instead:\n${out}`);
    return { built: false, stale: true, buildError: out };
  }
  return { built: true, stale: false };
}

// ---------------------------------------------------------------------------------------------
// Small helpers

function log(msg) {
  process.stderr.write(`[bench] ${msg}\n`);
}

const round = (x, d = 1) => (x === null || x === undefined || Number.isNaN(x) ? null : Math.round(x * 10 ** d) / 10 ** d);
const fmtInt = (x) => (x === null || x === undefined ? '-' : Math.round(x).toLocaleString('en-US'));
const fmtMs = (x) => (x === null || x === undefined ? '-' : x < 10 ? x.toFixed(2) : x.toFixed(1));
const fmtPct = (x) => (x === null || x === undefined ? '-' : `${(100 * x).toFixed(0)} %`);
const fmtMB = (b) => (b === null || b === undefined ? '-' : `${(b / 1048576).toFixed(0)} MB`);
const verdict = (ok) => (ok ? 'met' : 'MISSED');

function machineInfo(pgVersion) {
  const cpus = os.cpus();
  const git = (args) => {
    try {
      return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return null;
    }
  };
  const dirty = git(['status', '--porcelain', '--', 'src', 'migrations', 'package.json']);
  return {
    cpuModel: cpus[0]?.model ?? 'unknown',
    cpus: cpus.length,
    memoryBytes: os.totalmem(),
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    postgres: pgVersion ?? null,
    gitCommit: git(['rev-parse', 'HEAD']),
    gitDirtyServerFiles: dirty ? dirty.split('\n').length : 0,
  };
}

async function request(base, pathName, { method = 'POST', body, key, timeoutMs = 120_000 } = {}) {
  const res = await fetch(new URL(pathName, base), {
    method,
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const buf = Buffer.from(await res.arrayBuffer());
  return { status: res.status, headers: res.headers, body: buf, json: () => JSON.parse(buf.toString('utf8')) };
}

// ---------------------------------------------------------------------------------------------
// The stack

class Stack {
  constructor(opts) {
    this.opts = opts;
    this.tmp = mkdtempSync(path.join(os.tmpdir(), 'ec-bench-'));
    this.nonce = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
    this.stops = [];
    this.upstreamKey = 'sk-bench-upstream';
    this.servers = {};
  }

  async start() {
    log(`temp dir ${this.tmp}`);
    this.pg = await startPostgres({ logDir: this.tmp, settings: { shared_buffers: '256MB', shared_preload_libraries: 'pg_stat_statements' } });
    this.stops.push(() => this.pg.stop());
    log(`PostgreSQL ${this.pg.version} at ${this.pg.url}`);
    this.upstream = await this.startFakeUpstream(this.opts.upstreamLatency);
    const cliEnv = { ...process.env, DATABASE_URL: this.pg.url, LOG_LEVEL: 'warn' };
    execFileSync(process.execPath, [CLI, 'migrate'], { cwd: ROOT, env: cliEnv, stdio: 'pipe', timeout: 60_000 });
    if (!(await enableStatementStats(this.pg.url))) log('pg_stat_statements is not available: no time-in-PostgreSQL figures');
    this.tier = await this.benchTier();
    this.key = this.createKey({ DATABASE_URL: this.pg.url }, this.tier);
  }

  /** An API key of tenant `bench`: created with the CLI, which prints it alone on its last line. */
  createKey(env, tier = null) {
    const cliEnv = { ...process.env, LOG_LEVEL: 'warn', ...env };
    for (const [k, v] of Object.entries(cliEnv)) if (v === undefined) delete cliEnv[k];
    const out = execFileSync(process.execPath, [CLI, 'keys', 'create', '--tenant', 'bench', ...(tier ? ['--tier', tier] : [])], {
      cwd: ROOT,
      env: cliEnv,
      encoding: 'utf8',
      timeout: 60_000,
    });
    return out.trim().split('\n').pop().trim();
  }

  /**
   * Rate limits would measure the limiter, not the server: when the schema has tiers, add an
   * unlimited `bench` tier (NULL limits mean unlimited) allowed every kind of backend.
   */
  async benchTier() {
    const { default: postgres } = await import('postgres');
    const sql = postgres(this.pg.url, { max: 1, onnotice: () => {} });
    try {
      const [{ t }] = await sql`SELECT to_regclass('tiers') IS NOT NULL AS t`;
      if (!t) return null;
      await sql`INSERT INTO tiers (name, backends) VALUES ('bench', '{byok,upstream,local}') ON CONFLICT (name) DO NOTHING`;
      return 'bench';
    } catch (err) {
      log(`WARNING: could not add an unlimited bench tier (${err.message}); the default tier's rate limits may cap the figures`);
      return null;
    } finally {
      await sql.end({ timeout: 5 });
    }
  }

  async startFakeUpstream(latencyMs) {
    const port = await freePort();
    const child = spawnTracked(process.execPath, [CLI, 'fake-upstream', '--port', String(port), '--latency', String(latencyMs), '--api-key', this.upstreamKey], {
      cwd: ROOT,
      logFile: path.join(this.tmp, `fake-upstream-${port}.log`),
    });
    await waitFor(() => canConnect(port), 'fake upstream', 30_000, child);
    this.stops.push(() => stopChild(child));
    return { url: `http://127.0.0.1:${port}/v1`, base: `http://127.0.0.1:${port}`, pid: child.pid };
  }

  /** The server under test, as its own process. `extraEnv` adds or overrides variables. */
  async startServer(name, extraEnv, { profile = false, timeoutMs = 90_000 } = {}) {
    const port = await freePort();
    const logFile = path.join(this.tmp, `server-${name}.log`);
    const nodeArgs = [];
    let profDir = null;
    if (profile) {
      profDir = path.join(this.tmp, `prof-${name}`);
      mkdirSync(profDir, { recursive: true });
      nodeArgs.push('--cpu-prof', '--cpu-prof-dir', profDir);
    }
    const env = {
      ...process.env,
      HOST: '127.0.0.1',
      PORT: String(port),
      LOG_LEVEL: 'warn',
      DATABASE_URL: this.pg.url,
      DATA_DIR: path.join(this.tmp, `data-${name}`),
      // One process unless a scenario asks for workers (the `workers` scenario measures them).
      WORKERS: '1',
      ...extraEnv,
    };
    for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
    const child = spawnTracked(process.execPath, [...nodeArgs, CLI, 'serve'], { cwd: ROOT, env, logFile });
    const base = `http://127.0.0.1:${port}`;
    try {
      await waitHttp(`${base}/healthz`, `server ${name}`, timeoutMs, child);
      await waitHttp(`${base}/readyz`, `server ${name} (readyz)`, timeoutMs, child);
    } catch (err) {
      await stopChild(child, 'SIGKILL');
      throw new Error(`${err.message}\n--- ${logFile} ---\n${tailOf(logFile)}`);
    }
    let stopped = false;
    const server = {
      name,
      base,
      dataDir: env.DATA_DIR,
      pid: child.pid,
      logFile,
      profDir,
      async stop() {
        if (stopped) return;
        stopped = true;
        await stopChild(child, 'SIGTERM', 20_000);
      },
    };
    this.stops.push(() => server.stop());
    return server;
  }

  /** A bench/lib/*.mjs reference server, as its own process. */
  async startReference(script, args, what, timeoutMs = 60_000) {
    const port = await freePort();
    const logFile = path.join(this.tmp, `${path.basename(script, '.mjs')}.log`);
    const child = spawnTracked(process.execPath, [path.join(BENCH, 'lib', script), '--port', String(port), ...args], { cwd: ROOT, logFile });
    const base = `http://127.0.0.1:${port}`;
    try {
      await waitHttp(`${base}/healthz`, what, timeoutMs, child);
    } catch (err) {
      await stopChild(child, 'SIGKILL');
      throw new Error(`${err.message}\n--- ${logFile} ---\n${tailOf(logFile)}`);
    }
    const ref = { base, pid: child.pid, stop: () => stopChild(child) };
    this.stops.push(ref.stop);
    return ref;
  }

  /** The static ceiling server (bench/lib/static-server.mjs) answering POST /static/<name> with each of `bodies`' bytes. */
  async startStatic(bodies, what, extraArgs = []) {
    const files = {};
    for (const [name, bytes] of Object.entries(bodies)) {
      files[name] = path.join(this.tmp, `static-${Math.random().toString(36).slice(2)}-${name}.json`);
      writeFileSync(files[name], bytes);
    }
    const bodiesFile = path.join(this.tmp, `static-bodies-${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(bodiesFile, JSON.stringify(files));
    return this.startReference('static-server.mjs', ['--bodies', bodiesFile, ...extraArgs], what);
  }

  async stop() {
    for (const s of this.stops.reverse()) await s().catch(() => {});
    this.stops = [];
    rmSync(this.tmp, { recursive: true, force: true });
  }

  /** Runs bench/lib/load.mjs in its own process and returns its result. */
  async load(cfg) {
    const id = Math.random().toString(36).slice(2);
    const cfgFile = path.join(this.tmp, `load-${id}.json`);
    const resFile = path.join(this.tmp, `load-${id}.result.json`);
    writeFileSync(cfgFile, JSON.stringify({ warmupS: this.opts.warmup, connections: this.opts.connections, loadGen: this.opts.loadGen, ...cfg }));
    const limitS = cfg.workload.kind === 'seed' ? (cfg.maxSeconds ?? 600) + 30 : (cfg.warmupS ?? this.opts.warmup) + cfg.duration + 60;
    const t0 = performance.now();
    await new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [path.join(BENCH, 'lib', 'load.mjs'), cfgFile, resFile], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`load generator ran past ${limitS} s`));
      }, limitS * 1000);
      child.once('exit', (code) => {
        clearTimeout(timer);
        if (code === 0) resolve();
        else reject(new Error(`load generator exited with ${code}`));
      });
    });
    const wall = (performance.now() - t0) / 1000;
    const result = JSON.parse(readFileSync(resFile, 'utf8'));
    result.loadAvg1 = round(os.loadavg()[0], 2);
    result.wallSeconds = round(wall, 2);
    if (result.non2xx > 0 || result.errors > 0 || result.timeouts > 0) {
      log(`WARNING: ${cfg.label ?? cfg.path}: ${result.non2xx} non-2xx (${JSON.stringify(result.statusCodes)}), ${result.errors} errors, ${result.timeouts} timeouts`);
    }
    return result;
  }

  async stats(server) {
    const r = await request(server.base, '/v1/stats', { method: 'GET', key: this.key });
    if (r.status !== 200) throw new Error(`GET /v1/stats: ${r.status} ${r.body.toString().slice(0, 200)}`);
    return r.json();
  }

  /** Sends texts to the server in batches, so that they are cached. */
  async warm(server, model, texts, encoding = 'base64', batch = 512) {
    for (let i = 0; i < texts.length; i += batch) {
      const r = await request(server.base, '/v1/embeddings', { key: this.key, body: { model, encoding_format: encoding, input: texts.slice(i, i + batch) } });
      if (r.status !== 200) throw new Error(`warming ${model}: ${r.status} ${r.body.toString().slice(0, 300)}`);
    }
  }
}

/** One line on how busy the machine was during some load runs (anything else running skews them). */
function busyNote(runs) {
  const b = runs.map((r) => r?.machineBusyPct).filter((x) => x !== null && x !== undefined);
  const l = runs.map((r) => r?.loadAvg1).filter((x) => x !== null && x !== undefined);
  if (!b.length) return '';
  // What neither the measured server/reference nor the load generator used: PostgreSQL, the
  // upstream, and anything else running on the machine (in % of one core).
  const n = os.cpus().length;
  const other = runs
    .filter((r) => r && r.machineBusyPct !== null && r.machineBusyPct !== undefined)
    .map((r) => Math.max(0, Math.round(r.machineBusyPct * n - Object.values(r.cpu ?? {}).reduce((a, x) => a + (x?.pctOfCore ?? 0), 0) - (r.loadGenCpuPct ?? 0))));
  const gen = runs.map((r) => r?.loadGenCpuPct).filter((x) => x !== null && x !== undefined);
  return (
    `Machine CPU busy during these runs: ${Math.min(...b)}–${Math.max(...b)} % of all ${n} cores; load generator ${Math.min(...gen)}–${Math.max(...gen)} % of a core; ` +
    `everything else (PostgreSQL, fake upstream, other processes on the machine) ${Math.min(...other)}–${Math.max(...other)} % of a core; 1-min load average ${Math.min(...l)}–${Math.max(...l)}.`
  );
}

/** The element whose key is the median (the lower middle one for an even count): a real run, not an average. */
function medianBy(items, key) {
  const sorted = [...items].sort((a, b) => (key(a) ?? -Infinity) - (key(b) ?? -Infinity));
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

/** CPU of a watched process over a run's measured window: { cpuSeconds, pctOfCore, usPerRequest }. */
const cpuOf = (run, pid) => run?.cpu?.[pid] ?? null;
const fmtCpu = (run, pid) => (cpuOf(run, pid) ? `${cpuOf(run, pid).pctOfCore} %` : '-');
const fmtUs = (run, pid) => fmtInt(cpuOf(run, pid)?.usPerRequest);

const statDelta = (a, b) => ({ requests: b.requests - a.requests, inputs: b.inputs - a.inputs, hits: b.hits - a.hits, misses: b.misses - a.misses });

// ---------------------------------------------------------------------------------------------
// Scenarios. Each returns { results, markdown, targets? }.

const MODELS = { 768: 'fake-768', 1536: 'text-embedding-3-small' };

async function scenarioHit(stack, o) {
  const server = stack.main;
  const variants = [];
  for (const n of [1, 64]) for (const enc of ['base64', 'float']) for (const dims of [768, 1536]) variants.push({ n, enc, dims, name: `n${n}-${enc}-${dims}` });
  if (o.variants) {
    const unknown = o.variants.filter((v) => !variants.some((x) => x.name === v));
    if (unknown.length) throw new Error(`unknown --variants ${unknown.join(', ')} (known: ${variants.map((v) => v.name).join(', ')})`);
    variants.splice(0, variants.length, ...variants.filter((v) => o.variants.includes(v.name)));
  }
  // Warm each request, then capture a hit's exact response bytes for the static ceiling.
  const bodies = {};
  for (const v of variants) {
    const inputs = Array.from({ length: v.n }, (_, i) => text(`hit-${stack.nonce}`, i));
    v.body = JSON.stringify({ model: MODELS[v.dims], input: v.n === 1 ? inputs[0] : inputs, encoding_format: v.enc });
    const first = await request(server.base, '/v1/embeddings', { key: stack.key, body: v.body });
    if (first.status !== 200) throw new Error(`hit warm-up ${v.name}: ${first.status} ${first.body.toString().slice(0, 300)}`);
    const again = await request(server.base, '/v1/embeddings', { key: stack.key, body: v.body });
    if (again.headers.get('x-cache') !== 'hit') throw new Error(`hit warm-up ${v.name}: second request was x-cache ${again.headers.get('x-cache')}`);
    v.responseBytes = again.body.length;
    if (o.acceptEncoding) {
      const res = await fetch(new URL('/v1/embeddings', server.base), { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${stack.key}`, 'accept-encoding': o.acceptEncoding }, body: v.body });
      v.contentEncoding = res.headers.get('content-encoding') ?? 'identity';
      await res.arrayBuffer();
    }
    bodies[v.name] = again.body;
  }
  const ref = await stack.startStatic(bodies, 'static ceiling server');

  const auth = { authorization: `Bearer ${stack.key}` };
  const clientHeaders = o.acceptEncoding ? { ...auth, 'accept-encoding': o.acceptEncoding } : auth;
  const rows = [];
  for (const v of variants) {
    const fixed = { kind: 'fixed', body: v.body, inputsPerRequest: v.n };
    // Alternate server and ceiling `rounds` times; the round with the median ratio represents
    // the variant (a burst of other work on the machine then skews one round, not the figure).
    const peaks = [];
    let misses = 0;
    for (let k = 0; k < o.rounds; k++) {
      const tag = o.rounds > 1 ? ` (round ${k + 1}/${o.rounds})` : '';
      log(`hit ${v.name}: server${tag}`);
      const s0 = await stack.stats(server);
      const srv = await stack.load({ label: `hit ${v.name} server`, url: server.base, path: '/v1/embeddings', headers: clientHeaders, duration: o.duration, workload: fixed, watch: [server.pid] });
      let ident = null;
      if (o.acceptEncoding) {
        log(`hit ${v.name}: server without accept-encoding (identity)${tag}`);
        ident = await stack.load({ label: `hit ${v.name} identity`, url: server.base, path: '/v1/embeddings', headers: auth, duration: o.duration, workload: fixed, watch: [server.pid] });
      }
      misses += statDelta(s0, await stack.stats(server)).misses;
      log(`hit ${v.name}: static ceiling${tag}`);
      const st = await stack.load({ label: `hit ${v.name} static`, url: ref.base, path: `/static/${v.name}`, headers: auth, duration: o.duration, workload: fixed, watch: [ref.pid] });
      peaks.push({ server: srv, static: st, identity: ident, ratio: st.reqPerSec > 0 ? srv.reqPerSec / st.reqPerSec : null, identityRatio: ident?.reqPerSec > 0 ? srv.reqPerSec / ident.reqPerSec : null });
    }
    const { server: srv, static: st, ratio } = medianBy(peaks, (p) => p.ratio);
    const identPick = o.acceptEncoding ? medianBy(peaks, (p) => p.identityRatio) : null;
    const half = Math.max(1, Math.floor(medianBy(peaks, (p) => p.server.reqPerSec).server.reqPerSec / 2));
    const halves = [];
    for (let k = 0; k < o.rounds; k++) {
      log(`hit ${v.name}: server, then static ceiling, paced at half of the server's peak (${half} req/s)`);
      const hp = await stack.load({ label: `hit ${v.name} half`, url: server.base, path: '/v1/embeddings', headers: clientHeaders, duration: o.duration, rate: half, workload: fixed, watch: [server.pid] });
      const shp = await stack.load({ label: `hit ${v.name} static half`, url: ref.base, path: `/static/${v.name}`, headers: auth, duration: o.duration, rate: half, workload: fixed, watch: [ref.pid] });
      halves.push({ server: hp, static: shp });
    }
    const hp = medianBy(halves, (h) => h.server.latencyMs.p99).server;
    const shp = medianBy(halves, (h) => h.static.latencyMs.p99).static;
    rows.push({
      variant: v.name,
      inputs: v.n,
      encoding: v.enc,
      dims: v.dims,
      responseBytes: v.responseBytes,
      server: srv,
      static: st,
      ratio,
      roundRatios: peaks.map((p) => round(p.ratio, 3)),
      acceptEncoding: o.acceptEncoding,
      contentEncoding: v.contentEncoding,
      identity: identPick?.identity ?? null,
      identityRatio: identPick?.identityRatio ?? null,
      roundIdentityRatios: o.acceptEncoding ? peaks.map((p) => round(p.identityRatio, 3)) : null,
      halfPeak: { rate: half, ...hp },
      staticAtHalfPeak: { rate: half, ...shp },
      roundHalfPeakP99: halves.map((h) => [h.server.latencyMs.p99, h.static.latencyMs.p99]),
      missesDuringRun: misses,
    });
  }
  await ref.stop();

  // CPU per request, server vs ceiling, over the measured windows: what the req/s ratio would be
  // if each had a core to itself (robust to other work on the machine, which the req/s ratio is not).
  for (const r of rows) {
    const a = cpuOf(r.server, server.pid)?.usPerRequest;
    const b = cpuOf(r.static, ref.pid)?.usPerRequest;
    r.cpuRatio = a && b ? b / a : null;
  }
  const key = rows.find((r) => r.variant === 'n1-base64-768');
  const key1536 = rows.find((r) => r.variant === 'n1-base64-1536');
  for (const r of rows) r.identityVsStatic = r.identity && r.static.reqPerSec > 0 ? r.identity.reqPerSec / r.static.reqPerSec : null;
  const targets = [key, key1536].filter(Boolean).flatMap((r) => [
    ...(r.identity
      ? [
          { target: `hit ${r.variant}: with accept-encoding '${o.acceptEncoding}' >= 80 % of identity req/s`, value: `${fmtPct(r.identityRatio)} (sent as ${r.contentEncoding})`, met: r.identityRatio >= 0.8 },
          { target: `hit ${r.variant}: identity >= 50 % of static ceiling req/s`, value: fmtPct(r.identityVsStatic), met: r.identityVsStatic >= 0.5 },
        ]
      : []),
    { target: `hit ${r.variant}: >= 50 % of static ceiling req/s`, value: `${fmtPct(r.ratio)} (by CPU per request: ${fmtPct(r.cpuRatio)})`, met: r.ratio >= 0.5 },
    {
      target: `hit ${r.variant}: p99 < 10 ms at half of peak (${fmtInt(r.halfPeak.rate)} req/s)`,
      value: `${fmtMs(r.halfPeak.latencyMs.p99)} ms (static ceiling at that rate: ${fmtMs(r.staticAtHalfPeak.latencyMs.p99)} ms)`,
      met: r.halfPeak.latencyMs.p99 < 10,
    },
  ]);
  const md = [
    `### hit: server vs static ceiling (${o.connections} connections, ${o.duration} s each${o.rounds > 1 ? `, median of ${o.rounds} alternating rounds` : ''})`,
    '',
    '| request | resp. bytes | server req/s | static req/s | **ratio** | server CPU µs/req | static CPU µs/req | **ratio by CPU** | server inputs/s | server p50 / p99 ms | static p50 / p99 ms | server CPU | misses in run |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.inputs} × ${r.encoding} ${r.dims} | ${fmtInt(r.responseBytes)} | ${fmtInt(r.server.reqPerSec)} | ${fmtInt(r.static.reqPerSec)} | **${fmtPct(r.ratio)}** | ${fmtUs(r.server, server.pid)} | ${fmtUs(r.static, ref.pid)} | **${fmtPct(r.cpuRatio)}** | ${fmtInt(r.server.inputsPerSec)} | ${fmtMs(r.server.latencyMs.p50)} / ${fmtMs(r.server.latencyMs.p99)} | ${fmtMs(r.static.latencyMs.p50)} / ${fmtMs(r.static.latencyMs.p99)} | ${fmtCpu(r.server, server.pid)} | ${r.missesDuringRun} |`,
    ),
    '',
    '"ratio by CPU" = static CPU per request / server CPU per request: the req/s ratio the two would reach with a core each. "server CPU" is in % of one core over the measured window.',
    ...(o.acceptEncoding
      ? [
          '',
          `The server columns above are with \`accept-encoding: ${o.acceptEncoding}\` (the OpenAI SDK's); the static ceiling never compresses. The same server without accept-encoding, in the same rounds:`,
          '',
          '| request | sent as | server req/s, SDK headers | server req/s, identity | **SDK / identity** | server CPU µs/req, SDK / identity | identity / static |',
          '|---|---|---:|---:|---:|---:|---:|',
          ...rows.map(
            (r) =>
              `| ${r.inputs} × ${r.encoding} ${r.dims} | ${r.contentEncoding} | ${fmtInt(r.server.reqPerSec)} | ${fmtInt(r.identity?.reqPerSec)} | **${fmtPct(r.identityRatio)}** | ${fmtUs(r.server, server.pid)} / ${fmtUs(r.identity, server.pid)} | ${fmtPct(r.identityVsStatic)} |`,
          ),
        ]
      : []),
    '',
    '| request | half of server peak, req/s | server p50 / p90 / p99 ms | static ceiling p50 / p90 / p99 ms at the same rate | server CPU |',
    '|---|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.inputs} × ${r.encoding} ${r.dims} | ${fmtInt(r.halfPeak.rate)} | ${fmtMs(r.halfPeak.latencyMs.p50)} / ${fmtMs(r.halfPeak.latencyMs.p90)} / **${fmtMs(r.halfPeak.latencyMs.p99)}** | ${fmtMs(r.staticAtHalfPeak.latencyMs.p50)} / ${fmtMs(r.staticAtHalfPeak.latencyMs.p90)} / ${fmtMs(r.staticAtHalfPeak.latencyMs.p99)} | ${fmtCpu(r.halfPeak, server.pid)} |`,
    ),
    '',
    'Half peak: an evenly paced open-loop load at half the server\'s measured req/s, to the server and then to the static ceiling at that same rate; latency counted from when each request was due. The static column is the jitter the machine itself adds at that rate.',
    '',
    busyNote(rows.flatMap((r) => [r.server, r.static, r.identity, r.halfPeak, r.staticAtHalfPeak].filter(Boolean))),
  ].join('\n');
  return { results: rows, markdown: md, targets };
}

async function scenarioMiss(stack, o) {
  const server = stack.main;
  const enc = 'base64';
  const model = MODELS[1536];
  // Two loads: 8 connections (latency added per request, little queueing) and --connections
  // (throughput). Each round: the upstream directly, through the server, through the peer gateway.
  const loads = [...new Set([Math.min(8, o.connections), o.connections])];
  const peerInstall = ensurePeerGateway(log);
  let peer = null;
  let peerNote = '';
  if (peerInstall.ok) {
    try {
      peer = await startPeerGateway(peerInstall.entry, stack.tmp);
      stack.stops.push(peer.stop);
    } catch (err) {
      peerNote = `The peer gateway did not start, so it is not measured: ${err.message.split('\n')[0]}`;
    }
  } else peerNote = `The peer gateway is not measured: ${peerInstall.reason}`;
  if (peerNote) log(peerNote);
  const floors = await startMissFloors(stack, server, model, enc);
  const run = (label, url, headers, family, conns, watch, timing = { duration: o.duration }) =>
    stack.load({ label, url, path: '/v1/embeddings', headers, connections: conns, ...timing, workload: { kind: 'unique', family: `${family}-${stack.nonce}`, model, encoding: enc, prefix: '' }, watch });
  const directHeaders = { authorization: `Bearer ${stack.upstreamKey}` };
  const serverHeaders = { authorization: `Bearer ${stack.key}` };
  const peerHeaders = peerGatewayHeaders(stack.upstream.url, stack.upstreamKey);
  const sd = { requests: 0, inputs: 0, hits: 0, misses: 0 };
  // V8 optimises a server's code over its first seconds under load, and at a few hundred misses
  // a second that takes a while: a fresh server spent 2,700 µs of CPU per miss at 8 connections
  // in its first 8 s, 1,550 in the next 8 and 1,150 from then on. Every path gets the same
  // unmeasured run first, so that the rounds compare servers in their steady state.
  if (o.jitWarmup > 0) {
    const paths = [['server', server.base, serverHeaders], ...(peer ? [['peer gateway', peer.base, peerHeaders]] : []), ...floors.map((f) => [f.label, f.base, directHeaders])];
    for (const [label, url, headers] of paths) {
      log(`miss: JIT warm-up, ${o.jitWarmup} s through the ${label}`);
      await run(`miss warm-up ${label}`, url, headers, `missw-${label}`, loads.at(-1), [], { duration: o.jitWarmup, warmupS: 0 });
    }
  }
  const pairs = [];
  for (const conns of loads) {
    const rounds = [];
    const pg0 = await pgActivity(stack.pg.url).catch(() => null);
    const floorLookups0 = await floorLookups(floors);
    const misses0 = sd.misses;
    for (let k = 0; k < o.rounds; k++) {
      const tag = `${conns} connections${o.rounds > 1 ? `, round ${k + 1}/${o.rounds}` : ''}`;
      log(`miss (${tag}): fake upstream directly (${o.upstreamLatency} ms latency)`);
      const direct = await run('miss direct', stack.upstream.base, directHeaders, `missd${conns}r${k}`, conns, [stack.upstream.pid]);
      log(`miss (${tag}): through the server`);
      const s0 = await stack.stats(server);
      const via = await run('miss server', server.base, serverHeaders, `miss${conns}r${k}`, conns, [server.pid, stack.upstream.pid]);
      const d = statDelta(s0, await stack.stats(server));
      for (const key of Object.keys(sd)) sd[key] += d[key];
      let viaPeer = null;
      if (peer) {
        log(`miss (${tag}): through the peer gateway`);
        viaPeer = await run('miss peer', peer.base, peerHeaders, `missp${conns}r${k}`, conns, [peer.pid, stack.upstream.pid]);
      }
      const floorRuns = {};
      for (const f of floors) {
        log(`miss (${tag}): through the ${f.label}`);
        floorRuns[f.id] = await run(`miss ${f.id}`, f.base, directHeaders, `miss${f.id}${conns}r${k}`, conns, [f.pid, stack.upstream.pid]);
      }
      rounds.push({ ...missRound(conns, direct, via, viaPeer), floors: floorRuns });
    }
    const pick = medianBy(rounds, (r) => r.throughputRatio);
    const pg1 = await pgActivity(stack.pg.url).catch(() => null);
    const pg = pgPerMiss(pg0, pg1, sd.misses - misses0, (await floorLookups(floors)) - floorLookups0);
    const pgTimes = statementMeans(pg0, pg1);
    const roundFloorAddedP50Ms = Object.fromEntries(floors.map((f) => [f.id, rounds.map((r) => round(r.floors[f.id].latencyMs.p50 - r.direct.latencyMs.p50, 2))]));
    pairs.push({ ...pick, pg, pgTimes, roundRatios: rounds.map((r) => round(r.throughputRatio, 3)), roundAddedP50Ms: rounds.map((r) => round(r.addedP50Ms, 2)), roundPeerAddedP50Ms: rounds.map((r) => round(r.peerAddedP50Ms, 2)), roundFloorAddedP50Ms });
  }
  const light = pairs[0];
  const full = pairs.at(-1);
  const r = { upstreamLatencyMs: o.upstreamLatency, model, encoding: enc, rounds: o.rounds, peer: peer ? { name: '@portkey-ai/gateway', version: peerInstall.version } : { error: peerNote }, floors: floors.map(({ id, label }) => ({ id, label })), loads: pairs, serverStats: sd, addedP50Ms: light.addedP50Ms, addedP99Ms: light.addedP99Ms, throughputRatio: full.throughputRatio };
  const targets = [
    { target: `miss: added p50 <= 1 ms over the upstream directly (${light.connections} connections)`, value: `${fmtMs(light.addedP50Ms)} ms`, met: light.addedP50Ms <= 1 },
    { target: `miss: >= 90 % of the upstream's throughput (${full.connections} connections)`, value: fmtPct(full.throughputRatio), met: full.throughputRatio >= 0.9 },
    ...(peer
      ? pairs.map((p) => ({
          target: `miss: no worse than the peer gateway (${p.connections} connections: throughput >= peer's, added p50 <= peer's)`,
          value: `${fmtPct(p.vsPeer)} of its req/s, +${fmtMs(p.addedP50Ms)} vs +${fmtMs(p.peerAddedP50Ms)} ms`,
          met: p.vsPeer >= 1 && p.addedP50Ms <= p.peerAddedP50Ms,
        }))
      : []),
  ];
  const md = [missMarkdown(pairs, stack, server, peer, o, floors), '', `Server counted ${sd.misses} misses and ${sd.hits} hits over these runs (warm-ups included): every request should be a miss.`, peerNote, busyNote(pairs.flatMap((p) => [p.direct, p.server, p.peer, ...Object.values(p.floors ?? {})]))]
    .filter((x) => x !== '')
    .join('\n');
  return { results: r, markdown: md, targets };
}

/**
 * The floors of a miss on this machine (bench/lib/bare-proxy.mjs): a bare Fastify + undici
 * pass-through (one more process hop), and the same with one point lookup in PostgreSQL first
 * (what a read-through cache cannot skip). Their tenant and model version are the server's own,
 * read from a row it stored, so that the lookup walks the same index.
 */
async function startMissFloors(stack, server, model, enc) {
  const { default: postgres } = await import('postgres');
  const first = await request(server.base, '/v1/embeddings', { key: stack.key, body: JSON.stringify({ model, input: `miss floor probe ${stack.nonce}`, encoding_format: enc }) });
  if (first.status !== 200) throw new Error(`miss floor probe: ${first.status} ${first.body.toString().slice(0, 200)}`);
  const sql = postgres(stack.pg.url, { max: 1, onnotice: () => {} });
  let row;
  try {
    for (let k = 0; k < 50 && !row; k++) {
      [row] = await sql`SELECT tenant_id, model_version FROM embeddings WHERE model = ${model} ORDER BY created_at DESC LIMIT 1`;
      if (!row) await sleep(100);
    }
  } finally {
    await sql.end({ timeout: 5 });
  }
  if (!row) throw new Error('miss floor probe: the server stored no row');
  const upstream = stack.upstream.base;
  const bare = await stack.startReference('bare-proxy.mjs', ['--upstream', upstream], 'bare proxy');
  const lookup = await stack.startReference(
    'bare-proxy.mjs',
    ['--upstream', upstream, '--database-url', stack.pg.url, '--tenant-id', String(row.tenant_id), '--model', model, '--model-version', row.model_version],
    'bare proxy with a lookup',
  );
  return [
    { id: 'bare', label: 'bare proxy (Fastify + undici, no lookup)', ...bare },
    { id: 'bareLookup', label: 'bare proxy + 1 PostgreSQL point lookup', ...lookup },
  ];
}

/** PostgreSQL lookups the floors have made so far (theirs, not the server's, in pg_stat_database). */
async function floorLookups(floors) {
  let n = 0;
  for (const f of floors) {
    const r = await request(f.base, '/stats', { method: 'GET' });
    n += r.status === 200 ? r.json().lookups : 0;
  }
  return n;
}

function pgTimesText(t) {
  if (!t) return '-';
  const one = (label, x) => (x ? `${label} ${x.meanMs.toFixed(3)} (${fmtInt(x.calls)})` : null);
  return [one("the server's lookup", t.lookup), one('its write-behind INSERT', t.insert), one("the cache floor's lookup", t.floorLookup)].filter(Boolean).join(', ');
}

/** One round of one load: the server and the peer against the upstream directly. */
function missRound(connections, direct, server, peer) {
  const added = (x, q) => (x ? x.latencyMs[q] - direct.latencyMs[q] : null);
  const ratio = (a, b) => (a && b && b.reqPerSec > 0 ? a.reqPerSec / b.reqPerSec : null);
  return {
    connections,
    direct,
    server,
    peer,
    addedP50Ms: added(server, 'p50'),
    addedP99Ms: added(server, 'p99'),
    peerAddedP50Ms: added(peer, 'p50'),
    peerAddedP99Ms: added(peer, 'p99'),
    throughputRatio: ratio(server, direct),
    peerThroughputRatio: ratio(peer, direct),
    vsPeer: ratio(server, peer),
  };
}

function missMarkdown(pairs, stack, server, peer, o, floors) {
  const up = stack.upstream.pid;
  const addedOver = (p, run, q) => run.latencyMs[q] - p.direct.latencyMs[q];
  const floorRows = (p) =>
    floors.flatMap((f) => {
      const run = p.floors?.[f.id];
      return run ? [row(p, f.label, run, f.pid, run.reqPerSec / p.direct.reqPerSec, addedOver(p, run, 'p50'), addedOver(p, run, 'p99'))] : [];
    });
  const vsFloor = (p) => {
    const f = p.floors?.bareLookup;
    return f ? `| ${p.connections} | **server vs the cache floor** | **${fmtPct(p.server.reqPerSec / f.reqPerSec)}** | | | | **${fmtMs(p.addedP50Ms - addedOver(p, f, 'p50'))}** | ${fmtMs(p.addedP99Ms - addedOver(p, f, 'p99'))} | | | |` : [];
  };
  const row = (p, what, run, pid, ratio, a50, a99) =>
    `| ${p.connections} | ${what} | ${fmtInt(run.reqPerSec)} | ${ratio === undefined ? '-' : `**${fmtPct(ratio)}**`} | ${fmtMs(run.latencyMs.p50)} | ${fmtMs(run.latencyMs.p99)} | ${a50 === undefined ? '-' : `**+${fmtMs(a50)}**`} | ${a99 === undefined ? '-' : `+${fmtMs(a99)}`} | ${pid ? fmtCpu(run, pid) : '-'} | ${pid ? `**${fmtUs(run, pid)}**` : '-'} | ${fmtCpu(run, up)} |`;
  return [
    `### miss: through the server vs the fake upstream directly${peer ? ' and the peer gateway (Portkey)' : ''} (${o.upstreamLatency} ms upstream latency, 1 unique input per request, ${o.duration} s each${o.rounds > 1 ? `, the median of ${o.rounds} alternating rounds by server/direct throughput` : ''})`,
    '',
    '| connections | path | req/s | vs direct | p50 ms | p99 ms | added p50 ms | added p99 ms | its CPU | its CPU µs/miss | upstream CPU |',
    '|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...pairs.flatMap((p) => [
      row(p, 'upstream directly', p.direct, null),
      row(p, 'through the server', p.server, server.pid, p.throughputRatio, p.addedP50Ms, p.addedP99Ms),
      ...(p.peer ? [row(p, 'through the peer gateway', p.peer, peer.pid, p.peerThroughputRatio, p.peerAddedP50Ms, p.peerAddedP99Ms)] : []),
      ...floorRows(p),
      ...[vsFloor(p)].flat(),
      ...(p.peer ? [`| ${p.connections} | **server vs peer** | **${fmtPct(p.vsPeer)}** | | | | **${fmtMs(p.addedP50Ms - p.peerAddedP50Ms)}** | ${fmtMs(p.addedP99Ms - p.peerAddedP99Ms)} | | ${fmtPct(cpuOf(p.server, server.pid)?.usPerRequest / cpuOf(p.peer, peer.pid)?.usPerRequest)} | |`] : []),
    ]),
    '',
    `PostgreSQL per miss (all rounds, from pg_stat_database): ${pairs.map((p) => (p.pg ? `${p.connections} conns ${p.pg.commitsPerMiss.toFixed(2)} transactions (1 lookup + write-behind)` : `${p.connections} conns -`)).join('; ')}.`,
    ...(pairs.some((p) => p.pgTimes)
      ? [`Time inside PostgreSQL per statement (all rounds, pg_stat_statements, mean ms over calls): ${pairs.map((p) => `${p.connections} conns ${pgTimesText(p.pgTimes)}`).join('; ')}.`]
      : []),
    `Rounds (server/direct throughput; added p50 ms server${peer ? ' / peer' : ''}${floors.length ? ' / bare proxy / bare proxy + lookup' : ''}): ${pairs.map((p) => `${p.connections} conns ${p.roundRatios.map(fmtPct).join(', ')}; ${p.roundAddedP50Ms.map((x, i) => `+${fmtMs(x)}${peer ? ` / +${fmtMs(p.roundPeerAddedP50Ms[i])}` : ''}${floors.map((f) => ` / +${fmtMs(p.roundFloorAddedP50Ms[f.id][i])}`).join('')}`).join(', ')}`).join(' — ')}.`,
    ...(floors.length
      ? [
          '',
          'The floors are what any proxy, and any read-through cache, adds on this machine: the bare proxy is one more process hop (Fastify and undici, nothing else); the cache floor adds the one PostgreSQL point lookup a cache must make before it may call the provider. "server vs the cache floor" is what the server adds beyond that: auth, checks, coalescing, write-behind, accounting.',
        ]
      : []),
  ].join('\n');
}

function mixedWorkload(stack, o, tag) {
  return {
    kind: 'mixed',
    model: MODELS[1536],
    encoding: 'base64',
    hitFamily: `mixed-${stack.nonce}`,
    hitCount: o.mixedWarm,
    zipfS: 1.0,
    missFamily: `mixedmiss-${tag}-${stack.nonce}`,
    missRatio: 0.2,
    multiRatio: 0.1,
    multiSize: 8,
    seed: 7,
  };
}

async function warmMixed(stack, o) {
  if (stack.mixedWarmed) return;
  log(`mixed: warming ${o.mixedWarm} texts`);
  const texts = Array.from({ length: o.mixedWarm }, (_, i) => text(`mixed-${stack.nonce}`, i));
  await stack.warm(stack.main, MODELS[1536], texts);
  stack.mixedWarmed = true;
}

async function scenarioMixed(stack, o) {
  const server = stack.main;
  await warmMixed(stack, o);
  const s0 = await stack.stats(server);
  log('mixed: running');
  const w = mixedWorkload(stack, o, 'run');
  const res = await stack.load({ label: 'mixed', url: server.base, path: '/v1/embeddings', headers: { authorization: `Bearer ${stack.key}` }, duration: o.duration, workload: w, watch: [server.pid, stack.upstream.pid] });
  const sd = statDelta(s0, await stack.stats(server));
  const hitRatio = sd.hits + sd.misses > 0 ? sd.hits / (sd.hits + sd.misses) : null;
  const r = { workload: w, ...res, serverStats: sd, observedHitRatio: hitRatio };
  const md = [
    `### mixed: ${fmtPct(1 - w.missRatio)} hits (Zipf s=${w.zipfS} over ${fmtInt(w.hitCount)} warmed texts), ${fmtPct(w.missRatio)} misses (${o.upstreamLatency} ms upstream), ${fmtPct(w.multiRatio)} of requests with ${w.multiSize} inputs (${o.connections} connections, ${o.duration} s)`,
    '',
    '| req/s | inputs/s | p50 ms | p90 ms | p99 ms | observed input hit ratio | server CPU | server CPU µs/req |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|',
    `| ${fmtInt(res.reqPerSec)} | ${fmtInt(res.inputsPerSec)} | ${fmtMs(res.latencyMs.p50)} | ${fmtMs(res.latencyMs.p90)} | ${fmtMs(res.latencyMs.p99)} | ${fmtPct(hitRatio)} (${fmtInt(sd.hits)} hits / ${fmtInt(sd.misses)} misses) | ${fmtCpu(res, server.pid)} | ${fmtUs(res, server.pid)} |`,
    '',
    busyNote([res]),
  ].join('\n');
  return { results: r, markdown: md };
}

async function scenarioLocal(stack, o) {
  const modelDir = path.join(ROOT, 'test', 'fixtures', 'tiny-bert');
  const model = 'tiny-bert';
  const prefix = 'search_document: ';
  let server;
  try {
    log('local: starting the server with MODEL_DIR=test/fixtures/tiny-bert');
    server = await stack.startServer('local', { MODEL_DIR: modelDir, UPSTREAM_BASE_URL: undefined, UPSTREAM_API_KEY: undefined }, { profile: o.profile, timeoutMs: 60_000 });
    const probe = await request(server.base, '/v1/embeddings', { key: stack.key, body: { model, input: 'Hello world', encoding_format: 'base64' } });
    if (probe.status !== 200) throw new Error(`POST /v1/embeddings for ${model}: ${probe.status} ${probe.body.toString().slice(0, 300)}`);
  } catch (err) {
    if (server) await server.stop();
    const reason = String(err.message).split('\n').slice(0, 12).join('\n');
    log(`local backend unavailable: ${reason}`);
    return {
      results: { unavailable: true, reason },
      markdown: `### local: local backend unavailable\n\nThe server did not serve \`${model}\` from MODEL_DIR=test/fixtures/tiny-bert:\n\n\`\`\`\n${reason}\n\`\`\``,
      targets: [{ target: 'local: >= 1.5x @huggingface/transformers embeddings/s', value: 'local backend unavailable', met: false }],
    };
  }
  const rssBefore = rssOf(server.pid);
  const ref = await stack.startReference('transformers-server.mjs', ['--model-dir', modelDir, '--prefix', prefix], 'transformers.js reference', 120_000);

  // Same vectors? (Both: prefix + text, mean pooling, L2 normalise.)
  const sample = text(`localcheck-${stack.nonce}`, 0);
  const decode = (r) => new Float32Array(Uint8Array.from(Buffer.from(r.json().data[0].embedding, 'base64')).buffer);
  const a = decode(await request(server.base, '/v1/embeddings', { key: stack.key, body: { model, input: sample, encoding_format: 'base64' } }));
  const b = decode(await request(ref.base, '/v1/embeddings', { body: { model, input: sample, encoding_format: 'base64' } }));
  let maxDiff = a.length === b.length ? 0 : Infinity;
  for (let i = 0; i < Math.min(a.length, b.length); i++) maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));

  // The same never-seen texts to both, so every server request is a miss that runs the model.
  const family = `local-${stack.nonce}`;
  const conns = Math.min(o.connections, 32);
  log('local: transformers.js reference');
  const refRes = await stack.load({ label: 'local transformers', url: ref.base, path: '/v1/embeddings', connections: conns, duration: o.duration, workload: { kind: 'unique', family, model, encoding: 'base64', prefix: '' }, watch: [ref.pid] });
  log('local: server');
  const s0 = await stack.stats(server);
  const srvRes = await stack.load({ label: 'local server', url: server.base, path: '/v1/embeddings', headers: { authorization: `Bearer ${stack.key}` }, connections: conns, duration: o.duration, workload: { kind: 'unique', family, model, encoding: 'base64', prefix: '' }, watch: [server.pid] });
  const sd = statDelta(s0, await stack.stats(server));
  const rssAfter = rssOf(server.pid);
  await ref.stop();
  const profiles = await stopAndProfile(server, o);
  const ratio = refRes.inputsPerSec > 0 ? srvRes.inputsPerSec / refRes.inputsPerSec : null;
  const usSrv = cpuOf(srvRes, server.pid)?.usPerRequest;
  const usRef = cpuOf(refRes, ref.pid)?.usPerRequest;
  const cpuRatio = usSrv && usRef ? usRef / usSrv : null;
  const r = { model, modelDir: 'test/fixtures/tiny-bert', connections: conns, maxAbsDiffVsTransformers: maxDiff, server: srvRes, transformers: refRes, ratio, cpuRatio, serverStats: sd, serverRss: { before: rssBefore, after: rssAfter }, profiles };
  const md = [
    `### local: tiny-bert on CPU, concurrent single-text requests (${conns} connections, ${o.duration} s each; every request a miss)`,
    '',
    '| path | embeddings/s | p50 ms | p99 ms | CPU (all threads) | CPU µs per embedding |',
    '|---|---:|---:|---:|---:|---:|',
    `| @huggingface/transformers (one pipeline call per request) | ${fmtInt(refRes.inputsPerSec)} | ${fmtMs(refRes.latencyMs.p50)} | ${fmtMs(refRes.latencyMs.p99)} | ${fmtCpu(refRes, ref.pid)} | ${fmtUs(refRes, ref.pid)} |`,
    `| server (MODEL_DIR) | ${fmtInt(srvRes.inputsPerSec)} | ${fmtMs(srvRes.latencyMs.p50)} | ${fmtMs(srvRes.latencyMs.p99)} | ${fmtCpu(srvRes, server.pid)} | ${fmtUs(srvRes, server.pid)} |`,
    `| **ratio** | **${ratio === null ? '-' : ratio.toFixed(2)}x** | | | | **${cpuRatio === null ? '-' : cpuRatio.toFixed(2)}x** by CPU |`,
    '',
    `Vectors agree with transformers.js to ${maxDiff.toExponential(1)} (max abs difference). Server counted ${sd.misses} misses, ${sd.hits} hits. Server RSS ${fmtMB(rssBefore)} -> ${fmtMB(rssAfter)}.`,
    busyNote([refRes, srvRes]),
  ].join('\n');
  return {
    results: r,
    markdown: md + (profiles ? `\n\n${profiles.markdown}` : ''),
    targets: [{ target: 'local: >= 1.5x @huggingface/transformers embeddings/s', value: ratio === null ? '-' : `${ratio.toFixed(2)}x (by CPU per embedding: ${cpuRatio === null ? '-' : cpuRatio.toFixed(2)}x)`, met: ratio >= 1.5 }],
  };
}

async function scenarioSeed(stack, o) {
  const server = stack.main;
  const total = o.seedTexts;
  log(`seed: ${fmtInt(total)} new texts in batches of 512`);
  const s0 = await stack.stats(server);
  const res = await stack.load({
    label: 'seed',
    url: server.base,
    path: '/v1/embeddings',
    headers: { authorization: `Bearer ${stack.key}` },
    maxSeconds: 900,
    workload: { kind: 'seed', family: `seed-${stack.nonce}`, model: MODELS[1536], encoding: 'base64', total, batch: 512, concurrency: 4 },
    watch: [server.pid, stack.upstream.pid],
  });
  const s1 = await stack.stats(server);
  const sd = statDelta(s0, s1);
  const r = { ...res, serverStats: sd, storedRowsAfter: s1.stored_rows, storedBytesAfter: s1.stored_bytes };
  const md = [
    `### seed: cold-cache bulk load of ${fmtInt(total)} texts through /v1/embeddings (batches of 512, 4 in flight, ${o.upstreamLatency} ms upstream, 1536 dims)`,
    '',
    '| inputs/s | total s | batch p50 / p99 ms | server CPU | server CPU µs per input | upstream CPU | stored rows after | failures |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|',
    `| ${fmtInt(res.inputsPerSec)} | ${res.seconds.toFixed(1)} | ${fmtMs(res.batchLatencyMs.p50)} / ${fmtMs(res.batchLatencyMs.p99)} | ${fmtCpu(res, server.pid)} | ${fmtUs(res, server.pid)} | ${fmtCpu(res, stack.upstream.pid)} | ${fmtInt(s1.stored_rows)} | ${res.failures} |`,
    '',
    busyNote([res]),
  ].join('\n');
  return { results: r, markdown: md };
}

async function scenarioSoak(stack, o) {
  const server = stack.main;
  await warmMixed(stack, o);
  const minutes = o.minutes;
  // At least 4 samples; one a minute on long soaks.
  const chunks = Math.max(4, Math.round(minutes));
  const chunkS = (minutes * 60) / chunks;
  const samples = [{ minute: 0, rss: rssOf(server.pid) }];
  const perChunk = [];
  log(`soak: mixed workload for ${minutes} min, RSS sampled every ${chunkS.toFixed(0)} s`);
  for (let c = 0; c < chunks; c++) {
    const res = await stack.load({ label: `soak ${c + 1}`, url: server.base, path: '/v1/embeddings', headers: { authorization: `Bearer ${stack.key}` }, duration: chunkS, warmupS: 0, workload: { ...mixedWorkload(stack, o, `soak${c}`), seed: 100 + c }, watch: [server.pid] });
    samples.push({ minute: round(((c + 1) * chunkS) / 60, 2), rss: rssOf(server.pid) });
    perChunk.push({ reqPerSec: res.reqPerSec, p50: res.latencyMs.p50, p99: res.latencyMs.p99, non2xx: res.non2xx });
    log(`soak ${c + 1}/${chunks}: ${fmtInt(res.reqPerSec)} req/s, RSS ${fmtMB(samples.at(-1).rss)}`);
  }
  // Least-squares slope of RSS over time, over all samples and over the second half.
  const slope = (pts) => {
    if (pts.length < 2) return null;
    const n = pts.length;
    const mx = pts.reduce((a, p) => a + p.minute, 0) / n;
    const my = pts.reduce((a, p) => a + p.rss, 0) / n;
    let num = 0;
    let den = 0;
    for (const p of pts) {
      num += (p.minute - mx) * (p.rss - my);
      den += (p.minute - mx) ** 2;
    }
    return den > 0 ? num / den : null;
  };
  const r = { minutes, samples, perChunk, rssGrowthPerMinute: slope(samples), rssGrowthPerMinuteSecondHalf: slope(samples.slice(Math.floor(samples.length / 2))) };
  const md = [
    `### soak: mixed workload for ${minutes} min (${o.connections} connections)`,
    '',
    `RSS ${fmtMB(samples[0].rss)} -> ${fmtMB(samples.at(-1).rss)}; growth ${fmtMB(r.rssGrowthPerMinute)}/min overall, ${fmtMB(r.rssGrowthPerMinuteSecondHalf)}/min over the second half. (20 % of inputs are new texts: the hot cache fills towards HOT_CACHE_MB, default 256 MB, then must stop growing.)`,
    '',
    '| minute | RSS | req/s since the previous sample | p99 ms |',
    '|---:|---:|---:|---:|',
    ...samples.map((s, i) => `| ${s.minute} | ${fmtMB(s.rss)} | ${i ? fmtInt(perChunk[i - 1].reqPerSec) : '-'} | ${i ? fmtMs(perChunk[i - 1].p99) : '-'} |`),
  ].join('\n');
  return { results: r, markdown: md };
}

/** Runs bench/lib/pg-lookups.mjs (the raw postgres.js reference) in its own process. */
async function rawLookups(stack, cfg) {
  const id = Math.random().toString(36).slice(2);
  const cfgFile = path.join(stack.tmp, `pg-${id}.json`);
  const resFile = path.join(stack.tmp, `pg-${id}.result.json`);
  writeFileSync(cfgFile, JSON.stringify({ url: stack.pg.url, warmupS: stack.opts.warmup, ...cfg }));
  const limitS = stack.opts.warmup + cfg.duration + 60;
  const m0 = os.loadavg()[0];
  await new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(BENCH, 'lib', 'pg-lookups.mjs'), cfgFile, resFile], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`pg-lookups ran past ${limitS} s`));
    }, limitS * 1000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`pg-lookups exited with ${code}`));
    });
  });
  return { ...JSON.parse(readFileSync(resFile, 'utf8')), loadAvg1: round(Math.max(m0, os.loadavg()[0]), 2) };
}

/**
 * Hits served from PostgreSQL (HOT_CACHE_MB=0: every hit is a store lookup), against postgres.js
 * looking the same rows up directly with as many in flight and the same pool size.
 */
async function scenarioStoreHit(stack, o) {
  const poolSize = 10;
  const server = await stack.startServer(
    'store',
    { HOT_CACHE_MB: '0', DATABASE_POOL_SIZE: String(poolSize), UPSTREAM_BASE_URL: stack.upstream.url, UPSTREAM_API_KEY: stack.upstreamKey, UPSTREAM_MODELS: 'text-embedding-3-small,fake-768' },
    { profile: o.profile },
  );
  // The same server without the lookup batcher, for the distinct variant's comparison (same database).
  const plain = await stack.startServer('store-unbatched', {
    HOT_CACHE_MB: '0', DATABASE_POOL_SIZE: String(poolSize), STORE_LOOKUP_BATCH: 'false', UPSTREAM_BASE_URL: stack.upstream.url, UPSTREAM_API_KEY: stack.upstreamKey, UPSTREAM_MODELS: 'text-embedding-3-small,fake-768',
  });
  const { default: postgres } = await import('postgres');
  const sql = postgres(stack.pg.url, { max: 1, onnotice: () => {} });
  const model = MODELS[1536];
  const rows = [];
  // The floor for one input: bare Fastify, one point lookup per request (bench/lib/bare-proxy.mjs).
  let floor = null;
  // The ceiling for one input: the static server sending a hit's bytes, no lookup at all.
  let ceiling = null;
  try {
    const [{ id: tenantId }] = await sql`SELECT id FROM tenants WHERE name = 'bench'`;
    // --variants picks n1-base64-1536, n64-base64-1536 and/or n1-distinct-base64-1536 here; a
    // list naming none of them (hit's) runs all three.
    // `distinct`: every request one of DISTINCT_TEXTS stored inputs, as real clients send, so that
    // concurrent requests do not share one in-flight lookup (the fixed ones do): what the lookup
    // batcher merges. Its raw reference cycles through the same rows.
    const DISTINCT_TEXTS = 512;
    const all = [
      { n: 1, name: 'n1-base64-1536' },
      { n: 64, name: 'n64-base64-1536' },
      { n: 1, name: 'n1-distinct-base64-1536', distinct: DISTINCT_TEXTS },
    ];
    const named = all.filter((v) => o.variants?.includes(v.name));
    for (const { n, name, distinct } of named.length > 0 ? named : all) {
      const family = `storehit${distinct ? 'd' : n}-${stack.nonce}`;
      const inputs = Array.from({ length: distinct ?? n }, (_, i) => text(family, i));
      const body = JSON.stringify({ model, input: n === 1 ? inputs[0] : inputs, encoding_format: 'base64' });
      const expected = inputs.length;
      const [{ t0 }] = await sql`SELECT now() AS t0`;
      const warmBody = distinct ? JSON.stringify({ model, input: inputs, encoding_format: 'base64' }) : body;
      const first = await request(server.base, '/v1/embeddings', { key: stack.key, body: warmBody });
      if (first.status !== 200) throw new Error(`store-hit warm-up ${name}: ${first.status} ${first.body.toString().slice(0, 300)}`);
      // Rows are written behind the response: wait (bounded) until all of them are there.
      let stored = [];
      for (let k = 0; k < 100 && stored.length < expected; k++) {
        stored = await sql`SELECT input_hash, model_version FROM embeddings WHERE tenant_id = ${tenantId} AND model = ${model} AND created_at >= ${t0}`;
        if (stored.length < expected) await sleep(100);
      }
      if (stored.length < expected) throw new Error(`store-hit warm-up ${name}: ${stored.length} of ${expected} rows stored`);
      const again = await request(server.base, '/v1/embeddings', { key: stack.key, body });
      if (again.headers.get('x-cache') !== 'hit') throw new Error(`store-hit warm-up ${name}: second request was x-cache ${again.headers.get('x-cache')}`);
      // The reference at its best: statistics present (the server's lookup does not need them).
      await sql`ANALYZE embeddings`;
      const hashes = stored.map((r) => r.input_hash.toString('hex'));
      const fixed = distinct
        ? { kind: 'mixed', model, encoding: 'base64', hitFamily: family, hitCount: distinct, zipfS: 0, missRatio: 0, multiRatio: 0, missFamily: `${family}-miss` }
        : { kind: 'fixed', body, inputsPerRequest: n };
      const rounds = [];
      for (let k = 0; k < o.rounds; k++) {
        const tag = o.rounds > 1 ? ` (round ${k + 1}/${o.rounds})` : '';
        log(`store-hit ${name}: server, hot cache off${tag}`);
        const s0 = await stack.stats(server);
        const srv = await stack.load({ label: `store-hit ${name}`, url: server.base, path: '/v1/embeddings', headers: { authorization: `Bearer ${stack.key}` }, duration: o.duration, workload: fixed, watch: [server.pid] });
        const d = statDelta(s0, await stack.stats(server));
        let unbatched = null;
        if (distinct) {
          log(`store-hit ${name}: server with STORE_LOOKUP_BATCH=false${tag}`);
          unbatched = await stack.load({ label: `store-hit ${name} unbatched`, url: plain.base, path: '/v1/embeddings', headers: { authorization: `Bearer ${stack.key}` }, duration: o.duration, workload: fixed, watch: [plain.pid] });
        }
        log(`store-hit ${name}: raw postgres.js ${n === 1 ? 'point' : '= ANY'} lookups${tag}`);
        const raw = await rawLookups(stack, { poolSize, concurrency: o.connections, duration: o.duration, tenantId: Number(tenantId), model, modelVersion: stored[0].model_version, hashes, perLookup: n });
        let bare = null;
        let staticRun = null;
        if (n === 1 && !distinct) {
          ceiling ??= await stack.startStatic({ hit: again.body }, 'static ceiling server');
          log(`store-hit ${name}: static server, the same bytes, no lookup${tag}`);
          staticRun = await stack.load({ label: `store-hit ${name} static`, url: ceiling.base, path: '/static/hit', headers: { authorization: `Bearer ${stack.key}` }, duration: o.duration, workload: fixed, watch: [ceiling.pid] });
        }
        if (n === 1) {
          floor ??= await stack.startReference(
            'bare-proxy.mjs',
            ['--upstream', stack.upstream.base, '--database-url', stack.pg.url, '--tenant-id', String(tenantId), '--model', model, '--model-version', stored[0].model_version, '--answer-hits'],
            'bare store-hit floor',
          );
          log(`store-hit ${name}: bare Fastify + point lookup${tag}`);
          bare = await stack.load({ label: `store-hit ${name} floor`, url: floor.base, path: '/v1/embeddings', headers: { authorization: `Bearer ${stack.key}` }, duration: o.duration, workload: fixed, watch: [floor.pid] });
        }
        const ratio = raw.lookupsPerSec > 0 ? srv.reqPerSec / raw.lookupsPerSec : null;
        const bareRatio = bare && raw.lookupsPerSec > 0 ? bare.reqPerSec / raw.lookupsPerSec : null;
        const staticRatio = staticRun && raw.lookupsPerSec > 0 ? staticRun.reqPerSec / raw.lookupsPerSec : null;
        rounds.push({ server: srv, raw, ratio, bare, bareRatio, staticRun, staticRatio, misses: d.misses, unbatched, unbatchedRatio: unbatched && raw.lookupsPerSec > 0 ? unbatched.reqPerSec / raw.lookupsPerSec : null });
      }
      const pick = medianBy(rounds, (r) => r.ratio);
      rows.push({ variant: name, inputs: n, distinctTexts: distinct ?? null, ...pick, roundRatios: rounds.map((r) => round(r.ratio, 3)), missesDuringRun: rounds.reduce((a, r) => a + r.misses, 0) });
    }
  } finally {
    await sql.end({ timeout: 5 });
  }
  await plain.stop();
  const profiles = await stopAndProfile(server, o);
  const targets = rows.map((r) => ({
    target: `store-hit ${r.variant}: >= 80 % of raw postgres.js ${r.inputs === 1 ? 'point lookups/s' : '= ANY lookups/s'} (hot cache off)`,
    value: fmtPct(r.ratio),
    met: r.ratio >= 0.8,
  }));
  const md = [
    `### store-hit: hits from PostgreSQL (HOT_CACHE_MB=0) vs postgres.js looking the same rows up directly (${o.connections} in flight, pool of ${poolSize}, ${o.duration} s each${o.rounds > 1 ? `, median of ${o.rounds} alternating rounds` : ''})`,
    '',
    '| request | server req/s | server vectors/s | raw lookups/s | raw vectors/s | **ratio** | server p50 / p99 ms | raw p50 / p99 ms | server CPU µs/req | raw client CPU µs/lookup | misses in run |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.inputs} × base64 1536${r.distinctTexts ? ` (one of ${r.distinctTexts} texts)` : ''} | ${fmtInt(r.server.reqPerSec)} | ${fmtInt(r.server.inputsPerSec)} | ${fmtInt(r.raw.lookupsPerSec)} | ${fmtInt(r.raw.vectorsPerSec)} | **${fmtPct(r.ratio)}** | ${fmtMs(r.server.latencyMs.p50)} / ${fmtMs(r.server.latencyMs.p99)} | ${fmtMs(r.raw.latencyMs.p50)} / ${fmtMs(r.raw.latencyMs.p99)} | ${fmtUs(r.server, server.pid)} | ${fmtInt(r.raw.clientCpuUsPerLookup)} | ${r.missesDuringRun} |`,
    ),
    '',
    'Raw: one `input_hash = $4` query per lookup (1 input) or one `input_hash = ANY($4)` query for the 64 hashes, tenant, model and version as equalities, after `ANALYZE embeddings`; it runs in its own process, as the load generator does. The fixed requests repeat one body, so concurrent ones share one in-flight lookup; "one of N texts" sends a random one of N stored texts per request (the raw reference cycles through the same rows), so lookups are concurrent and the server merges them (store/lookup-batcher.ts).',
    '',
    ...rows
      .filter((r) => r.unbatched)
      .map((r) => `\n${r.variant} with STORE_LOOKUP_BATCH=false, same rounds: ${fmtInt(r.unbatched.reqPerSec)} req/s, **${fmtPct(r.unbatchedRatio)}** of raw, p50 / p99 ${fmtMs(r.unbatched.latencyMs.p50)} / ${fmtMs(r.unbatched.latencyMs.p99)} ms, ${fmtUs(r.unbatched, plain.pid)} µs CPU/req (batched: ${fmtPct(r.ratio)}).`),
    '',
    ...rows
      .filter((r) => r.bare)
      .map(
        (r) =>
          `${r.variant}, the floor (bare Fastify, sha256, one point lookup per request, base64 of the stored bytes; no auth, no coalescing, no batching), same rounds: ${fmtInt(r.bare.reqPerSec)} req/s, **${fmtPct(r.bareRatio)}** of raw, p50 / p99 ${fmtMs(r.bare.latencyMs.p50)} / ${fmtMs(r.bare.latencyMs.p99)} ms, ${fmtUs(r.bare, floor.pid)} µs CPU/req; the server is ${fmtPct(r.server.reqPerSec / r.bare.reqPerSec)} of the floor.`,
      ),
    '',
    ...rows
      .filter((r) => r.staticRun)
      .map(
        (r) =>
          `${r.variant}, the ceiling (the static server sending this hit's bytes after parsing the request, no lookup at all), same rounds: ${fmtInt(r.staticRun.reqPerSec)} req/s, **${fmtPct(r.staticRatio)}** of raw, ${fmtUs(r.staticRun, ceiling.pid)} µs CPU/req. ` +
          `The target, 80 % of raw (${fmtInt(0.8 * r.raw.lookupsPerSec)} req/s), is ${fmtPct(r.staticRatio > 0 ? 0.8 / r.staticRatio : null)} of what a server that only sends these bytes reaches here; the server is at ${fmtPct(r.server.reqPerSec / r.staticRun.reqPerSec)} of it.`,
      ),
    '',
    busyNote(rows.flatMap((r) => [r.server, r.bare, r.staticRun].filter(Boolean))),
  ].join('\n');
  return { results: rows, markdown: md + (profiles ? `\n\n${profiles.markdown}` : ''), targets };
}

/** The worker pids of a `serve --workers` primary (its children), for CPU accounting. */
function childPids(pid) {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * Hit throughput of `serve` with WORKERS=1 against WORKERS=N (N = the machine's cores), the
 * same hot 1 × base64 1536-d hit, alternated `rounds` times. Per added core: (ratio - 1) / (N - 1).
 * The load generator is a process on the same machine: on few cores it takes one of them.
 */
async function scenarioWorkers(stack, o) {
  const cores = os.availableParallelism();
  const n = Math.max(2, cores);
  const env = { UPSTREAM_BASE_URL: stack.upstream.url, UPSTREAM_API_KEY: stack.upstreamKey, UPSTREAM_MODELS: 'text-embedding-3-small,fake-768' };
  const one = await stack.startServer('workers-1', { ...env, WORKERS: '1' });
  const many = await stack.startServer(`workers-${n}`, { ...env, WORKERS: String(n) });
  for (let k = 0; k < 600 && childPids(many.pid).length < n; k++) await sleep(100);
  const workerPids = childPids(many.pid);
  if (workerPids.length < n) throw new Error(`workers: ${workerPids.length} of ${n} workers running`);
  const body = JSON.stringify({ model: MODELS[1536], input: text(`workers-${stack.nonce}`, 0), encoding_format: 'base64' });
  let hitBytes = null;
  for (const server of [one, many]) {
    const r = await request(server.base, '/v1/embeddings', { key: stack.key, body });
    if (r.status !== 200) throw new Error(`workers warm-up: ${r.status} ${r.body.toString().slice(0, 300)}`);
    hitBytes ??= r.body;
  }
  // The machine's own ceiling for adding processes: the static server (the same response bytes,
  // nothing else done) with 1 and with N processes on one port, in the same rounds.
  const static1 = await stack.startStatic({ hit: hitBytes }, 'static server, 1 process');
  const staticN = await stack.startStatic({ hit: hitBytes }, `static server, ${n} processes`, ['--workers', String(n)]);
  for (let k = 0; k < 600 && childPids(staticN.pid).length < n; k++) await sleep(100);
  const staticPids = childPids(staticN.pid);
  const fixed = { kind: 'fixed', body, inputsPerRequest: 1 };
  const headers = { authorization: `Bearer ${stack.key}` };
  const cpuPct = (run, pids) => pids.reduce((a, pid) => a + (cpuOf(run, pid)?.pctOfCore ?? 0), 0);
  const cpuUs = (run, pids) => pids.reduce((a, pid) => a + (cpuOf(run, pid)?.usPerRequest ?? 0), 0);
  const perCore = (ratio) => (ratio === null ? null : (ratio - 1) / (n - 1));
  const rounds = [];
  for (let k = 0; k < o.rounds; k++) {
    const tag = o.rounds > 1 ? ` (round ${k + 1}/${o.rounds})` : '';
    log(`workers: WORKERS=1${tag}`);
    // Warm-up inside each run fills every worker's own hot cache (each is a process of its own).
    const r1 = await stack.load({ label: 'workers 1', url: one.base, path: '/v1/embeddings', headers, duration: o.duration, workload: fixed, watch: [one.pid] });
    log(`workers: WORKERS=${n}${tag}`);
    const rn = await stack.load({ label: `workers ${n}`, url: many.base, path: '/v1/embeddings', headers, duration: o.duration, workload: fixed, watch: [many.pid, ...workerPids] });
    log(`workers: static server, 1 and ${n} processes${tag}`);
    const s1 = await stack.load({ label: 'workers static 1', url: static1.base, path: '/static/hit', headers, duration: o.duration, workload: fixed, watch: [static1.pid] });
    const sn = await stack.load({ label: `workers static ${n}`, url: staticN.base, path: '/static/hit', headers, duration: o.duration, workload: fixed, watch: [staticN.pid, ...staticPids] });
    const ratio = r1.reqPerSec > 0 ? rn.reqPerSec / r1.reqPerSec : null;
    const staticRatio = s1.reqPerSec > 0 ? sn.reqPerSec / s1.reqPerSec : null;
    rounds.push({ one: r1, many: rn, ratio, perAddedCore: perCore(ratio), static1: s1, staticN: sn, staticRatio, staticPerAddedCore: perCore(staticRatio) });
  }
  await Promise.all([many.stop(), one.stop(), static1.stop(), staticN.stop()]);
  const pick = medianBy(rounds, (r) => r.ratio);
  const cpuRatio = cpuUs(pick.one, [one.pid]) > 0 ? cpuUs(pick.many, [many.pid, ...workerPids]) / cpuUs(pick.one, [one.pid]) : null;
  const result = { cores, workers: n, ...pick, cpuPerRequestRatio: cpuRatio, roundRatios: rounds.map((r) => round(r.ratio, 3)), staticRoundRatios: rounds.map((r) => round(r.staticRatio, 3)), workerPids };
  const targets = [{ target: `workers: hit throughput grows >= 0.7 x per added core (WORKERS=${n} vs 1)`, value: round(pick.perAddedCore, 2), met: pick.perAddedCore !== null && pick.perAddedCore >= 0.7 }];
  const row = (label, run, pids) =>
    `| ${label} | ${fmtInt(run.reqPerSec)} | ${fmtMs(run.latencyMs.p50)} / ${fmtMs(run.latencyMs.p99)} | ${cpuPct(run, pids)} % | ${fmtInt(cpuUs(run, pids))} | ${run.loadGenCpuPct ?? '-'} % | ${run.machineBusyPct ?? '-'} % |`;
  const md = [
    `### workers: hot hits (1 × base64 1536) with WORKERS=1 vs WORKERS=${n} on ${cores} cores (${o.connections} connections, ${o.duration} s each${o.rounds > 1 ? `, median of ${o.rounds} alternating rounds` : ''})`,
    '',
    '| server | req/s | p50 / p99 ms | server CPU (all its processes, % of a core) | server CPU µs/req | load generator CPU | machine busy |',
    '|---|---:|---:|---:|---:|---:|---:|',
    row('WORKERS=1', pick.one, [one.pid]),
    row(`WORKERS=${n}`, pick.many, [many.pid, ...workerPids]),
    row('static server, 1 process', pick.static1, [static1.pid]),
    row(`static server, ${n} processes`, pick.staticN, [staticN.pid, ...staticPids]),
    '',
    `**ratio ${round(pick.ratio, 2)} ×, ${round(pick.perAddedCore, 2)} × per added core** (rounds: ${rounds.map((r) => round(r.ratio, 2)).join(', ')}). ` +
      `CPU per request, WORKERS=${n} / WORKERS=1: ${round(cpuRatio, 2)} × (what the workers cost beyond one process, whatever the machine gave them). ` +
      `The load generator runs on the same ${cores} cores: when the server's processes plus the load generator use all of them, the figure measures the machine, not the scaling.`,
    '',
    `The machine's own ceiling, same rounds: the static server (these response bytes and nothing else, through node:cluster as \`serve\` runs its workers) grows ${round(pick.staticRatio, 2)} × with ${n} processes, **${round(pick.staticPerAddedCore, 2)} × per added core** (rounds: ${rounds.map((r) => round(r.staticPerAddedCore, 2)).join(', ')}); ` +
      `the server's figure is ${fmtPct(pick.staticPerAddedCore > 0 ? pick.perAddedCore / pick.staticPerAddedCore : null)} of it.`,
    '',
    busyNote(rounds.flatMap((r) => [r.one, r.many, r.static1, r.staticN])),
  ].join('\n');
  return { results: result, markdown: md, targets };
}

const RUNNERS = { workers: scenarioWorkers, hit: scenarioHit, 'store-hit': scenarioStoreHit, miss: scenarioMiss, mixed: scenarioMixed, local: scenarioLocal, seed: scenarioSeed, soak: scenarioSoak, ingest: (stack, o) => scenarioIngest(stack, o, { stopAndProfile }) };

/** Stops a profiled server (so that it writes its profile) and summarises it. */
async function stopAndProfile(server, o) {
  await server.stop();
  if (!o.profile || !server.profDir) return null;
  await sleep(200);
  const files = existsSync(server.profDir) ? readdirSync(server.profDir).filter((f) => f.endsWith('.cpuprofile')) : [];
  if (files.length === 0) return { error: 'no .cpuprofile was written (did the server exit cleanly?)' };
  const keepDir = path.join(BENCH, 'results', 'profiles');
  mkdirSync(keepDir, { recursive: true });
  const src = path.join(server.profDir, files[0]);
  const kept = path.join(keepDir, `${new Date().toISOString().replace(/[:.]/g, '-')}-${server.name}.cpuprofile`);
  writeFileSync(kept, readFileSync(src));
  const summary = summariseProfile(kept, 30);
  return { file: path.relative(ROOT, kept), summary, markdown: `#### CPU profile of the ${server.name} server\n\n${profileMarkdown({ ...summary, file: kept })}` };
}

// ---------------------------------------------------------------------------------------------
// Main

async function main() {
  let o;
  try {
    o = parseArgs(process.argv.slice(2));
  } catch (err) {
    console.error(`${err.message}\n${USAGE}`);
    process.exit(2);
  }
  if (o.help || o.scenarios.length === 0) {
    console.error(USAGE);
    process.exit(o.help ? 0 : 2);
  }
  const build = ensureBuild(o.build);
  const stack = new Stack(o);
  let interrupted = false;
  const onSignal = (sig) => {
    if (interrupted) return;
    interrupted = true;
    log(`${sig}: stopping everything`);
    stack.stop().finally(() => process.exit(130));
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('exit', killAllTracked);
  // The whole run is bounded: generous for the scenarios asked for, then everything is stopped.
  const budgetS = 600 + o.scenarios.length * 40 * (o.duration + o.warmup + 2) + (o.scenarios.includes('soak') ? o.minutes * 60 * 1.2 : 0) + (o.scenarios.includes('seed') ? 900 : 0) + (o.scenarios.includes('ingest') ? 1800 : 0);
  const watchdog = setTimeout(() => {
    log(`the run passed its time budget of ${Math.round(budgetS)} s: stopping`);
    onSignal('watchdog');
  }, budgetS * 1000);
  watchdog.unref();

  const startedAt = new Date();
  const report = { startedAt: startedAt.toISOString(), options: { ...o }, build, machine: null, scenarios: {}, memory: {}, targets: [] };
  const sections = [];
  let failed = false;
  try {
    await stack.start();
    report.machine = machineInfo(stack.pg.version);
    const needsMain = o.scenarios.some((s) => s !== 'local' && s !== 'store-hit' && s !== 'ingest' && s !== 'workers');
    if (needsMain) {
      const embedded = o.store === 'embedded';
      stack.main = await stack.startServer(
        'main',
        { UPSTREAM_BASE_URL: stack.upstream.url, UPSTREAM_API_KEY: stack.upstreamKey, UPSTREAM_MODELS: 'text-embedding-3-small,fake-768', ...(embedded ? { DATABASE_URL: undefined } : {}) },
        { profile: o.profile },
      );
      // On the embedded store the key lives in the server's own database: created through it (DEFAULT_TIER is unlimited).
      if (embedded) stack.key = stack.createKey({ DATA_DIR: stack.main.dataDir, DATABASE_URL: undefined });
      log(`server pid ${stack.main.pid} at ${stack.main.base}, RSS ${fmtMB(rssOf(stack.main.pid))}`);
    }
    for (const name of o.scenarios) {
      const pid = name === 'local' || name === 'store-hit' || name === 'ingest' || name === 'workers' ? null : stack.main.pid;
      const before = pid ? rssOf(pid) : null;
      const t0 = performance.now();
      try {
        const out = await RUNNERS[name](stack, o);
        const seconds = round((performance.now() - t0) / 1000);
        report.scenarios[name] = Array.isArray(out.results) ? { seconds, variants: out.results } : { seconds, ...out.results };
        if (out.targets) report.targets.push(...out.targets);
        sections.push(out.markdown);
      } catch (err) {
        failed = true;
        log(`${name} failed: ${err.stack ?? err}`);
        report.scenarios[name] = { error: String(err.message ?? err) };
        sections.push(`### ${name}: FAILED\n\n\`\`\`\n${String(err.message ?? err).slice(0, 2000)}\n\`\`\``);
      }
      if (pid) {
        const after = rssOf(pid);
        report.memory[name] = { rssBefore: before, rssAfter: after };
        log(`${name} done; server RSS ${fmtMB(before)} -> ${fmtMB(after)}`);
      } else if (report.scenarios[name]?.serverRss) {
        report.memory[name] = { rssBefore: report.scenarios[name].serverRss.before, rssAfter: report.scenarios[name].serverRss.after };
      }
    }
    if (stack.main) {
      const prof = await stopAndProfile(stack.main, o);
      if (prof) {
        report.profile = { file: prof.file, ...prof.summary };
        sections.push(prof.markdown ?? `Profile: ${prof.error}`);
      }
    }
  } catch (err) {
    failed = true;
    log(`run failed: ${err.stack ?? err}`);
    sections.push(`### FAILED\n\n\`\`\`\n${String(err.message ?? err).slice(0, 2000)}\n\`\`\``);
    report.error = String(err.message ?? err);
  } finally {
    clearTimeout(watchdog);
    await stack.stop();
  }

  report.finishedAt = new Date().toISOString();
  const m = report.machine ?? machineInfo(null);
  report.machine = m;
  const header = [
    `## embedding-cache benchmark — ${startedAt.toISOString().slice(0, 19).replace('T', ' ')} UTC`,
    '',
    `Machine: ${m.cpus} × ${m.cpuModel}, ${(m.memoryBytes / 2 ** 30).toFixed(0)} GiB RAM, ${m.platform}; Node ${m.node}; ${m.postgres ?? 'PostgreSQL ?'}. ` +
      `Commit ${m.gitCommit?.slice(0, 10) ?? '?'}${m.gitDirtyServerFiles ? ` (+${m.gitDirtyServerFiles} uncommitted server files)` : ''}${build.stale ? ' (dist/ older than src/)' : ''}.`,
    `Load: ${o.loadGen === 'wrk' ? 'wrk for fixed bodies, autocannon for unique and mixed ones' : 'autocannon'}, in a separate process, 1 thread, ${o.connections} connections, ${o.duration} s per measurement after ${o.warmup} s warm-up${o.quick ? ' (--quick)' : ''}${o.profile ? '; server under --cpu-prof (slower)' : ''}. Server, references, PostgreSQL and the load generator share the machine's ${m.cpus} cores.`,
  ];
  const memRows = Object.entries(report.memory);
  const md = [
    ...header,
    '',
    ...(report.targets.length
      ? ['### targets', '', '| target | measured | |', '|---|---:|---|', ...report.targets.map((t) => `| ${t.target} | ${t.value} | ${verdict(t.met)} |`), '']
      : []),
    sections.join('\n\n'),
    '',
    ...(memRows.length
      ? ['### server memory (RSS) around each scenario', '', '| scenario | before | after |', '|---|---:|---:|', ...memRows.map(([k, v]) => `| ${k} | ${fmtMB(v.rssBefore)} | ${fmtMB(v.rssAfter)} |`), '']
      : []),
  ].join('\n');
  console.log(md);
  if (o.write) {
    const dir = path.join(BENCH, 'results');
    mkdirSync(dir, { recursive: true });
    const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
    const jsonFile = path.join(dir, `${stamp}.json`);
    writeFileSync(jsonFile, JSON.stringify(report, null, 2) + '\n');
    // latest.md is the last full run (`all`); a partial run writes latest-<scenarios>.md.
    const latest = ALL.every((s) => o.scenarios.includes(s)) ? 'latest.md' : `latest-${o.scenarios.join('-')}.md`;
    writeFileSync(path.join(dir, latest), md + '\n');
    log(`wrote ${path.relative(ROOT, jsonFile)} and bench/results/${latest}`);
  }
  process.exit(failed ? 1 : 0);
}

main().catch((err) => {
  console.error(err);
  killAllTracked();
  process.exit(1);
});
