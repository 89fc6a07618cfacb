/**
 * The `ingest` scenario (issue 14, items 5 and 8): a cold-cache bulk load through
 * /v1/embeddings on each store in turn, the same requests on both.
 *
 *  - the server on PostgreSQL (the bench's throw-away server), then on the embedded store
 *    (PGlite in a fresh DATA_DIR, no DATABASE_URL), each with HOT_CACHE_MB fixed;
 *  - the fake upstream at whatever --upstream-latency says (0 ms for this scenario's figures);
 *  - N new texts (--ingest-texts; 20k with --quick, 100k otherwise) in 512-input requests,
 *    4 in flight, sent in chunks; after each chunk GET /v1/stats, which first writes every
 *    pending row, so the time counted is the time until the rows are *in the store*, not only
 *    answered; then the server's RSS and the hot cache's bytes (from /metrics).
 *
 * Prints inputs/s for both stores and their ratio (target: embedded >= 0.5 x PostgreSQL), and
 * RSS beyond the hot cache per 100k rows once the hot cache is full (target: flat).
 */
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { rssOf } from './services.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

const MODEL = 'text-embedding-3-small'; // 1536 dims on the fake upstream
const BATCH = 512;
const CONCURRENCY = 4;
const HOT_CACHE_MB = 32;

const log = (msg) => process.stderr.write(`[bench] ${msg}\n`);
const fmtInt = (x) => (x === null || x === undefined || Number.isNaN(x) ? '-' : Math.round(x).toLocaleString('en-US'));
const fmtMB = (b) => (b === null || b === undefined ? '-' : `${(b / 1048576).toFixed(0)} MB`);

function slope(points) {
  const n = points.length;
  const mx = points.reduce((a, [x]) => a + x, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  const sxy = points.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0);
  const sxx = points.reduce((a, [x]) => a + (x - mx) ** 2, 0);
  return sxx > 0 ? sxy / sxx : 0;
}

async function getJson(base, pathName, key) {
  const res = await fetch(new URL(pathName, base), { headers: key ? { authorization: `Bearer ${key}` } : {}, signal: AbortSignal.timeout(600_000) });
  const body = await res.text();
  if (res.status !== 200) throw new Error(`GET ${pathName}: ${res.status} ${body.slice(0, 300)}`);
  return pathName === '/metrics' ? body : JSON.parse(body);
}

async function hotCacheBytes(base) {
  const m = /^ec_hot_cache_bytes\s+(\S+)$/m.exec(await getJson(base, '/metrics'));
  return m ? Number(m[1]) : null;
}

/** One store: start its server, send the chunks, sample after each, stop it. */
async function ingestOn(stack, o, store, total, chunks, stopAndProfile) {
  const env = { HOT_CACHE_MB: String(HOT_CACHE_MB), UPSTREAM_BASE_URL: stack.upstream.url, UPSTREAM_API_KEY: stack.upstreamKey, UPSTREAM_MODELS: MODEL };
  if (store === 'embedded') env.DATABASE_URL = undefined;
  const server = await stack.startServer(`ingest-${store}`, env, { profile: o.profile, timeoutMs: 120_000 });
  let key = stack.key;
  if (store === 'embedded') {
    // The CLI reaches the running server's embedded database through its socket in DATA_DIR.
    const cliEnv = { ...process.env, DATA_DIR: path.join(stack.tmp, `data-ingest-${store}`), LOG_LEVEL: 'warn' };
    delete cliEnv.DATABASE_URL;
    const out = execFileSync(process.execPath, [path.join(ROOT, 'dist', 'cli.js'), 'keys', 'create', '--tenant', 'bench'], { cwd: ROOT, env: cliEnv, encoding: 'utf8', timeout: 60_000 });
    key = out.trim().split('\n').pop().trim();
  }
  const s0 = await getJson(server.base, '/v1/stats', key);
  const samples = [{ rows: 0, rss: rssOf(server.pid), hot: await hotCacheBytes(server.base), seconds: 0 }];
  const per = Math.ceil(total / chunks / BATCH) * BATCH;
  let sent = 0;
  let seconds = 0;
  let answerSeconds = 0;
  let failures = 0;
  const runs = [];
  for (let c = 0; sent < total; c++) {
    const n = Math.min(per, total - sent);
    const res = await stack.load({
      label: `ingest ${store} ${c + 1}`,
      url: server.base,
      path: '/v1/embeddings',
      headers: { authorization: `Bearer ${key}` },
      maxSeconds: 900,
      workload: { kind: 'seed', family: `ingest-${store}-${stack.nonce}-${c}`, model: MODEL, encoding: 'base64', total: n, batch: BATCH, concurrency: CONCURRENCY },
      watch: [server.pid],
    });
    // /v1/stats writes every pending row before it counts: the chunk ends when its rows are stored.
    // Counted: the load generator's own measured window (not its process start) and the flush.
    const t0 = performance.now();
    const st = await getJson(server.base, '/v1/stats', key);
    seconds += res.seconds + (performance.now() - t0) / 1000;
    answerSeconds += res.seconds;
    failures += res.failures;
    sent += n;
    runs.push(res);
    samples.push({ rows: st.stored_rows - s0.stored_rows, rss: rssOf(server.pid), hot: await hotCacheBytes(server.base), seconds });
    log(`ingest ${store}: ${fmtInt(sent)} sent, ${fmtInt(st.stored_rows - s0.stored_rows)} stored, ${fmtInt(sent / seconds)} inputs/s, RSS ${fmtMB(samples.at(-1).rss)}`);
  }
  const profile = await stopAndProfile(server, o);
  const stored = samples.at(-1).rows;
  // Growth of what is not the hot cache, over the samples taken once the hot cache is at its
  // bound (within 10 %): the least-squares slope of RSS - hot cache bytes against rows stored,
  // per 100k rows (a slope over several samples, as one GC more or less moves a single one).
  const bound = HOT_CACHE_MB * 1048576;
  const after = samples.filter((s) => s.hot !== null && s.hot >= 0.9 * bound && s.rss !== null);
  const growthPer100k = after.length >= 3 ? slope(after.map((s) => [s.rows, s.rss - s.hot])) * 100_000 : null;
  const from = after[0];
  return {
    store,
    inputs: sent,
    stored,
    seconds,
    inputsPerSec: stored / seconds,
    answeredInputsPerSec: sent / answerSeconds,
    failures,
    serverCpuPctOfCore: runs.map((r) => r.cpu?.[server.pid]?.pctOfCore ?? null),
    samples,
    growthPer100kRows: growthPer100k,
    growthFromRows: from?.rows ?? null,
    profile,
  };
}

/** `stopAndProfile(server, o)`: run.mjs's, which stops the server and summarises its profile under --profile. */
export async function scenarioIngest(stack, o, { stopAndProfile }) {
  const total = o.ingestTexts ?? (o.quick ? 20_000 : 100_000);
  const chunks = 10;
  log(`ingest: ${fmtInt(total)} new texts per store in ${BATCH}-input requests, ${CONCURRENCY} in flight, ${o.upstreamLatency} ms upstream, HOT_CACHE_MB=${HOT_CACHE_MB}`);
  const uptimeBefore = os.loadavg().map((x) => x.toFixed(2)).join(' ');
  const rounds = [];
  for (let r = 0; r < Math.max(1, o.rounds); r++) {
    // Alternate the order so that neither store always runs on a warmer machine.
    const order = r % 2 === 0 ? ['postgres', 'embedded'] : ['embedded', 'postgres'];
    const res = {};
    for (const store of order) res[store] = await ingestOn(stack, o, store, total, chunks, stopAndProfile);
    rounds.push(res);
  }
  const ratios = rounds.map((x) => x.embedded.inputsPerSec / x.postgres.inputsPerSec);
  const mid = [...ratios.keys()].sort((a, b) => ratios[a] - ratios[b])[Math.floor((ratios.length - 1) / 2)];
  const med = rounds[mid];
  const ratio = ratios[mid];
  const fmtGrowth = (g) => (g === null ? '- (hot cache never full)' : `${g >= 0 ? '+' : ''}${(g / 1048576).toFixed(1)} MB`);
  const rowLine = (x) =>
    `| ${x.store} | ${fmtInt(x.inputsPerSec)} | ${fmtInt(x.answeredInputsPerSec)} | ${x.seconds.toFixed(1)} | ${fmtInt(x.stored)} | ${x.serverCpuPctOfCore.map((c) => (c === null ? '-' : `${c} %`)).join(' ')} | ${x.samples.map((s) => `${fmtMB(s.rss)}`).join(' → ')} | ${fmtGrowth(x.growthPer100kRows)} |`;
  const md = [
    `### ingest: ${fmtInt(total)} new texts per store through /v1/embeddings (${BATCH} inputs a request, ${CONCURRENCY} in flight, ${o.upstreamLatency} ms upstream, 1536 dims, HOT_CACHE_MB=${HOT_CACHE_MB}${rounds.length > 1 ? `; the median of ${rounds.length} alternating rounds by ratio` : ''})`,
    '',
    'inputs/s counts until the rows are in the store (each chunk ends with GET /v1/stats, which writes pending rows first); "answered" counts responses only.',
    '',
    '| store | inputs/s (stored) | inputs/s (answered) | seconds | rows stored | server CPU per chunk | RSS at 0 and after each chunk | RSS beyond the hot cache per 100k rows, once it is full |',
    '|---|---:|---:|---:|---:|---|---|---:|',
    ...[med.postgres, med.embedded].map(rowLine),
    '',
    `Embedded / PostgreSQL: **${ratio.toFixed(2)}x** (target >= 0.5)${rounds.length > 1 ? `; every round: ${ratios.map((x) => x.toFixed(2)).join(', ')}` : ''}. Failures: ${rounds.flatMap((x) => [x.postgres.failures, x.embedded.failures]).reduce((a, b) => a + b, 0)}. Load average before: ${uptimeBefore}, after: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}.`,
    '',
    'RSS beyond the hot cache = RSS − ec_hot_cache_bytes; its growth is the least-squares slope over the samples taken once the hot cache is at its bound (at least 3), scaled to 100k rows.',
    ...rounds.flatMap((x) => [x.postgres, x.embedded]).filter((x) => x.profile?.markdown).map((x) => `\n${x.profile.markdown}`),
  ].join('\n');
  for (const x of rounds.flatMap((y) => [y.postgres, y.embedded])) if (x.profile) x.profile = { file: x.profile.file, error: x.profile.error };
  const growth = [med.postgres.growthPer100kRows, med.embedded.growthPer100kRows];
  return {
    results: { total, rounds, ratio, ratios },
    markdown: md,
    targets: [
      { target: 'ingest: embedded >= 0.5x PostgreSQL inputs/s (512-input requests)', value: `${ratio.toFixed(2)}x (${fmtInt(med.embedded.inputsPerSec)} vs ${fmtInt(med.postgres.inputsPerSec)})`, met: ratio >= 0.5 },
      {
        target: 'memory: RSS beyond the hot cache flat per 100k rows (both stores)',
        value: growth.map(fmtGrowth).join(' / '),
        // "Flat": under 16 MB per 100k rows (GC timing alone moves RSS by that much).
        met: growth.every((g) => g !== null && g < 16 * 1048576),
      },
    ],
  };
}
