#!/usr/bin/env node
/**
 * The load generator, run as its own process so that it never shares an event loop with the
 * server it measures:   node bench/lib/load.mjs <config.json> <result.json>
 *
 * Drives autocannon (one worker thread: the machine is small) with a workload built here:
 *   fixed   the same body every time (hit path, static ceiling)
 *   unique  one never-seen text per request (miss path, local model)
 *   mixed   hits drawn Zipf-wise from a warmed set, a share of unique misses, some multi-input
 *   seed    a fixed list of batches sent once each, `concurrency` at a time (bulk cold cache)
 * Latency percentiles are computed here from every response's exact time (autocannon's own
 * histogram rounds to whole milliseconds); autocannon's figures are kept as well.
 *
 * `loadGen: 'wrk'` drives a fixed body with wrk instead (Debian's `wrk`, one thread): a C load
 * generator spends a fraction of autocannon's CPU per request, which on a 2-core machine is
 * CPU the measured server gets back. Its percentiles are wrk's own, kept to the microsecond.
 */
import http from 'node:http';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { rng, text, zipfSampler } from './texts.mjs';

const [, , configPath, resultPath] = process.argv;
let machineBusyPct = null;

/** CPU seconds (user + system, all threads) a process has used, from /proc/<pid>/stat. */
function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return null;
  }
}

/** Machine-wide busy and total jiffies, all cores, from /proc/stat. */
function machineJiffies() {
  try {
    const v = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number);
    const total = v.reduce((a, b) => a + b, 0);
    return { busy: total - v[3] - v[4], total };
  } catch {
    return null;
  }
}

/**
 * Marks the measured window: CPU used by the watched processes (the server, a reference) and
 * how busy the whole machine was, over exactly the measured run.
 */
function cpuWindow() {
  const pids = cfg.watch ?? [];
  const c0 = pids.map(cpuSeconds);
  const m0 = machineJiffies();
  const t0 = performance.now();
  return (completed) => {
    const wall = (performance.now() - t0) / 1000;
    const m1 = machineJiffies();
    machineBusyPct = m0 && m1 && m1.total > m0.total ? Math.round((100 * (m1.busy - m0.busy)) / (m1.total - m0.total)) : null;
    return Object.fromEntries(
      pids.map((pid, i) => {
        const c1 = cpuSeconds(pid);
        if (c1 === null || c0[i] === null) return [pid, null];
        const used = c1 - c0[i];
        return [pid, { cpuSeconds: Math.round(used * 100) / 100, pctOfCore: Math.round((100 * used) / wall), usPerRequest: completed > 0 ? Math.round((used * 1e6) / completed) : null }];
      }),
    );
  };
}
const cfg = JSON.parse(readFileSync(configPath, 'utf8'));

/** Returns a function giving the next request body and the number of inputs in it. */
function workload(w) {
  switch (w.kind) {
    case 'fixed':
      return null;
    case 'unique': {
      let n = 0;
      const base = { model: w.model, encoding_format: w.encoding };
      return () => ({ body: JSON.stringify({ ...base, input: w.prefix + text(w.family, n++) }), inputs: 1 });
    }
    case 'mixed': {
      const random = rng(w.seed ?? 42);
      const zipf = zipfSampler(w.hitCount, w.zipfS, random);
      let misses = 0;
      const one = () => (random() < w.missRatio ? text(w.missFamily, misses++) : text(w.hitFamily, zipf()));
      return () => {
        const multi = random() < w.multiRatio;
        const n = multi ? w.multiSize : 1;
        const inputs = new Array(n);
        for (let i = 0; i < n; i++) inputs[i] = one();
        return { body: JSON.stringify({ model: w.model, encoding_format: w.encoding, input: multi ? inputs : inputs[0] }), inputs: n };
      };
    }
    default:
      throw new Error(`unknown workload ${w.kind}`);
  }
}

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx];
}

function summarise(times) {
  const sorted = Float64Array.from(times).sort();
  let sum = 0;
  for (const t of sorted) sum += t;
  const r = (x) => (x === null ? null : Math.round(x * 1000) / 1000);
  return {
    count: sorted.length,
    mean: r(sorted.length ? sum / sorted.length : null),
    p50: r(percentile(sorted, 50)),
    p90: r(percentile(sorted, 90)),
    p99: r(percentile(sorted, 99)),
    p999: r(percentile(sorted, 99.9)),
    max: r(sorted.length ? sorted[sorted.length - 1] : null),
  };
}

function cannon(opts, record) {
  return new Promise((resolve, reject) => {
    const inst = autocannon(opts, (err, result) => (err ? reject(err) : resolve(result)));
    if (record) {
      inst.on('response', (_client, statusCode, _bytes, responseTime) => {
        if (statusCode >= 200 && statusCode < 300) record.push(responseTime);
      });
    }
  });
}

async function runCannon() {
  const make = workload(cfg.workload);
  let inputsSent = 0;
  const request = {
    method: 'POST',
    path: cfg.path,
    headers: { 'content-type': 'application/json', ...(cfg.headers ?? {}) },
  };
  if (make) {
    request.setupRequest = (req) => {
      const next = make();
      inputsSent += next.inputs;
      req.body = next.body;
      return req;
    };
  } else {
    request.body = cfg.workload.body;
  }
  const base = {
    url: cfg.url,
    connections: cfg.connections,
    pipelining: 1,
    timeout: cfg.timeoutS ?? 30,
    requests: [request],
    ...(cfg.overallRate ? { overallRate: cfg.overallRate } : {}),
  };
  if (cfg.warmupS > 0) await cannon({ ...base, duration: cfg.warmupS });
  inputsSent = 0;
  const times = [];
  const startedAt = Date.now();
  const cpuEnd = cpuWindow();
  const r = await cannon({ ...base, duration: cfg.duration }, times);
  const cpu = cpuEnd(times.length);
  const seconds = r.duration || (Date.now() - startedAt) / 1000;
  const ok = times.length;
  const inputsPerRequest = make ? null : cfg.workload.inputsPerRequest ?? 1;
  return {
    seconds,
    connections: cfg.connections,
    overallRate: cfg.overallRate ?? null,
    requests: r.requests.total,
    ok,
    reqPerSec: ok / seconds,
    inputsPerSec: make ? (inputsSent * (ok / Math.max(1, r.requests.sent ?? r.requests.total))) / seconds : (ok * inputsPerRequest) / seconds,
    inputsSent: make ? inputsSent : ok * inputsPerRequest,
    latencyMs: summarise(times),
    autocannon: {
      latency: { p50: r.latency.p50, p97_5: r.latency.p97_5, p99: r.latency.p99, max: r.latency.max, mean: r.latency.mean },
      requestsAverage: r.requests.average,
      throughputBytesPerSec: r.throughput.average,
    },
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    statusCodes: r.statusCodeStats,
    cpu,
  };
}

/** A Lua string literal of any bytes (wrk's script sees it verbatim). */
const luaString = (s) => `"${Buffer.from(s).toString('hex').replace(/../g, '\\x$&')}"`;

/** One wrk run of `seconds`; resolves with its summary (written by the script's done()). */
function wrk(dir, seconds, tag) {
  const out = path.join(dir, `${tag}.json`);
  const script = path.join(dir, `${tag}.lua`);
  const headers = { 'content-type': 'application/json', ...(cfg.headers ?? {}) };
  writeFileSync(
    script,
    [
      'wrk.method = "POST"',
      `wrk.body = ${luaString(cfg.workload.body)}`,
      ...Object.entries(headers).map(([k, v]) => `wrk.headers[${luaString(k)}] = ${luaString(v)}`),
      // done() runs once, after every thread has stopped: os.clock() is then wrk's whole CPU time.
      'done = function(summary, latency, requests)',
      `  local f = io.open(${luaString(out)}, "w")`,
      '  local e = summary.errors',
      '  f:write(string.format(\'{"requests":%d,"durationUs":%d,"bytes":%d,"cpuSeconds":%.4f,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},"latencyUs":{"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d}}\',',
      '    summary.requests, summary.duration, summary.bytes, os.clock(), e.connect, e.read, e.write, e.status, e.timeout,',
      '    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9), latency.max))',
      '  f:close()',
      'end',
    ].join('\n'),
  );
  const url = new URL(cfg.path, cfg.url).href;
  const args = ['-t1', `-c${cfg.connections}`, `-d${Math.max(1, Math.round(seconds))}s`, `--timeout`, `${cfg.timeoutS ?? 30}s`, '-s', script, url];
  return new Promise((resolve, reject) => {
    const child = spawn(cfg.wrkPath ?? 'wrk', args, { stdio: ['ignore', 'ignore', 'inherit'] });
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`wrk exited with ${code}`));
      try {
        resolve(JSON.parse(readFileSync(out, 'utf8')));
      } catch (err) {
        reject(new Error(`wrk wrote no summary: ${err.message}`));
      }
    });
  });
}

async function runWrk() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-wrk-'));
  try {
    if (cfg.warmupS > 0) await wrk(dir, cfg.warmupS, 'warmup');
    const cpuEnd = cpuWindow();
    const r = await wrk(dir, cfg.duration, 'run');
    const e = r.errors;
    const ok = r.requests - e.status;
    const cpu = cpuEnd(ok);
    const seconds = r.durationUs / 1e6;
    const ms = (us) => Math.round(us) / 1000;
    return {
      seconds,
      connections: cfg.connections,
      overallRate: null,
      requests: r.requests,
      ok,
      reqPerSec: ok / seconds,
      inputsPerSec: (ok * (cfg.workload.inputsPerRequest ?? 1)) / seconds,
      inputsSent: ok * (cfg.workload.inputsPerRequest ?? 1),
      latencyMs: { count: r.requests, mean: ms(r.latencyUs.mean), p50: ms(r.latencyUs.p50), p90: ms(r.latencyUs.p90), p99: ms(r.latencyUs.p99), p999: ms(r.latencyUs.p999), max: ms(r.latencyUs.max) },
      wrk: { bytes: r.bytes, errors: e },
      non2xx: e.status,
      errors: e.connect + e.read + e.write,
      timeouts: e.timeout,
      cpu,
      wrkCpuSeconds: r.cpuSeconds,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Bulk: each batch sent once, `concurrency` requests in flight, over keep-alive connections. */
async function runSeed() {
  const w = cfg.workload;
  const agent = new http.Agent({ keepAlive: true, maxSockets: w.concurrency });
  const url = new URL(cfg.path, cfg.url);
  const batches = Math.ceil(w.total / w.batch);
  let next = 0;
  let inputs = 0;
  const failures = [];
  const times = [];
  const post = (body) =>
    new Promise((resolve, reject) => {
      const req = http.request(
        url,
        { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...(cfg.headers ?? {}) }, timeout: 120_000 },
        (res) => {
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks) }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
      req.end(body);
    });
  const started = performance.now();
  const cpuEnd = cpuWindow();
  const deadline = Date.now() + (cfg.maxSeconds ?? 600) * 1000;
  await Promise.all(
    Array.from({ length: w.concurrency }, async () => {
      while (next < batches && Date.now() < deadline) {
        const b = next++;
        const n = Math.min(w.batch, w.total - b * w.batch);
        const input = new Array(n);
        for (let i = 0; i < n; i++) input[i] = text(w.family, b * w.batch + i);
        const t0 = performance.now();
        const res = await post(JSON.stringify({ model: w.model, encoding_format: w.encoding, input })).catch((err) => ({ status: 0, body: Buffer.from(String(err)) }));
        times.push(performance.now() - t0);
        if (res.status === 200) inputs += n;
        else if (failures.length < 5) failures.push(`${res.status}: ${res.body.toString('utf8', 0, 300)}`);
        else failures.push(res.status);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const cpu = cpuEnd(inputs);
  agent.destroy();
  return {
    seconds,
    batches,
    batch: w.batch,
    concurrency: w.concurrency,
    inputs,
    inputsPerSec: inputs / seconds,
    complete: inputs === w.total,
    batchLatencyMs: summarise(times),
    cpu,
    failures: failures.length,
    failureSamples: failures.filter((f) => typeof f === 'string'),
  };
}

/**
 * Open-loop load at a fixed rate, evenly spaced (to the timer's millisecond), over at most
 * `connections` connections. autocannon's own rate limit is a per-second quota (each connection
 * sends flat out until its quota for the second is used, then waits for the next second), which
 * measures bursts at full speed rather than a steady half load. Latency here is counted from
 * when a request was due, so queueing behind a slow server is counted (no coordinated omission).
 */
async function runPaced() {
  const { Pool } = await import('undici');
  const pool = new Pool(cfg.url, { connections: cfg.connections, pipelining: 1, keepAliveTimeout: 60_000 });
  const make = workload(cfg.workload);
  const headers = { 'content-type': 'application/json', ...(cfg.headers ?? {}) };
  const fixedBody = make ? null : Buffer.from(cfg.workload.body);
  const interval = 1000 / cfg.rate;

  const phase = (seconds, rec) =>
    new Promise((resolve) => {
      const total = Math.floor(seconds * cfg.rate);
      const start = performance.now() + 5;
      let fired = 0;
      let done = 0;
      let maxLag = 0;
      const finish = () => {
        if (++done === total) resolve({ total, maxLag });
      };
      const fire = (due) => {
        const sent = performance.now();
        maxLag = Math.max(maxLag, sent - due);
        const body = fixedBody ?? make().body;
        pool
          .request({ path: cfg.path, method: 'POST', headers, body })
          .then(async (res) => {
            for await (const _ of res.body);
            const end = performance.now();
            if (rec) {
              if (res.statusCode >= 200 && res.statusCode < 300) {
                rec.fromDue.push(end - due);
                rec.fromSent.push(end - sent);
                // Worst latency per 250 ms window of due times: shows stalls and when they happened.
                const w = Math.floor((due - start) / 250);
                rec.windows[w] = Math.max(rec.windows[w] ?? 0, end - due);
              } else rec.non2xx++;
            }
          })
          .catch(() => rec && rec.errors++)
          .finally(finish);
      };
      const tick = () => {
        const now = performance.now();
        while (fired < total && start + fired * interval <= now) fire(start + interval * fired++);
        if (fired < total) setTimeout(tick, Math.max(0, start + fired * interval - performance.now()));
      };
      if (total === 0) resolve({ total, maxLag });
      else setTimeout(tick, 5);
      // Bounded: what has not come back 30 s after the last request was due counts as a timeout.
      setTimeout(() => {
        if (rec) rec.timeouts = total - done;
        resolve({ total, maxLag });
      }, seconds * 1000 + 30_000).unref();
    });

  if (cfg.warmupS > 0) await phase(cfg.warmupS, null);
  const rec = { fromDue: [], fromSent: [], non2xx: 0, errors: 0, timeouts: 0, windows: [] };
  const t0 = performance.now();
  const cpuEnd = cpuWindow();
  const { total, maxLag } = await phase(cfg.duration, rec);
  const cpu = cpuEnd(rec.fromDue.length);
  const seconds = Math.min((performance.now() - t0) / 1000, cfg.duration + 0.05);
  await pool.destroy();
  const ok = rec.fromDue.length;
  return {
    seconds,
    connections: cfg.connections,
    rate: cfg.rate,
    requests: total,
    ok,
    reqPerSec: ok / seconds,
    inputsPerSec: (ok * (cfg.workload.inputsPerRequest ?? 1)) / seconds,
    latencyMs: summarise(rec.fromDue),
    latencyFromSendMs: summarise(rec.fromSent),
    maxScheduleLagMs: Math.round(maxLag * 100) / 100,
    worstPer250msMs: Array.from(rec.windows, (x) => Math.round((x ?? 0) * 10) / 10),
    non2xx: rec.non2xx,
    errors: rec.errors,
    timeouts: rec.timeouts,
    cpu,
  };
}

const cpuStart = process.cpuUsage();
const wallStart = performance.now();
const useWrk = cfg.loadGen === 'wrk' && cfg.workload.kind === 'fixed' && !cfg.rate;
const [loadGen, runner] = cfg.workload.kind === 'seed' ? ['node:http', runSeed] : cfg.rate ? ['undici (paced)', runPaced] : useWrk ? ['wrk', runWrk] : ['autocannon', runCannon];
const result = await runner();
result.loadGen = loadGen;
// The load generator's own CPU, % of one core (near 100 % means it, not the server, is the limit).
// With wrk: wrk's CPU over its measured run (this process only waits on it meanwhile).
const cpu = process.cpuUsage(cpuStart);
result.machineBusyPct = machineBusyPct;
result.loadGenCpuPct = useWrk
  ? Math.round((100 * result.wrkCpuSeconds) / result.seconds)
  : Math.round(((cpu.user + cpu.system) / 1000 / (performance.now() - wallStart)) * 100);
writeFileSync(resultPath, JSON.stringify(result));
process.exit(0);
