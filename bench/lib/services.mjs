/**
 * Processes the benchmark needs, each started here and stopped by the harness: a real
 * PostgreSQL server (a port of test/support/services.ts), the shipped fake upstream, the
 * server under test, and the reference servers. Every child is tracked so that an error or a
 * Ctrl-C still stops them all (by PID, never by name). Loopback only.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, createWriteStream, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** Every child still running, so that exit paths can stop them. */
const children = new Set();

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

export async function waitFor(check, what, timeoutMs = 30_000, child) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (child && (child.exitCode !== null || child.signalCode !== null)) {
      throw new Error(`${what} exited (code ${child.exitCode ?? child.signalCode}) before it was ready`);
    }
    if (await check().catch(() => false)) return;
    await sleep(100);
  }
  throw new Error(`${what} did not start within ${timeoutMs} ms`);
}

export function canConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Spawns a tracked child; its stdout and stderr go to `logFile` when given. */
export function spawnTracked(cmd, args, { env, logFile, cwd } = {}) {
  const child = spawn(cmd, args, {
    env: env ?? process.env,
    cwd,
    stdio: logFile ? ['ignore', 'pipe', 'pipe'] : 'ignore',
  });
  if (logFile) {
    const out = createWriteStream(logFile, { flags: 'a' });
    child.stdout.pipe(out);
    child.stderr.pipe(out);
  }
  children.add(child);
  child.once('exit', () => children.delete(child));
  child.once('error', () => children.delete(child));
  return child;
}

export function stopChild(child, signal = 'SIGTERM', graceMs = 10_000) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill(signal);
  });
}

/** Last resort on exit: SIGKILL whatever is left (synchronous, for process 'exit'). */
export function killAllTracked() {
  for (const c of children) {
    try {
      c.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

export function tailOf(file, lines = 30) {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

function pgBinDir() {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) {
    throw new Error('PostgreSQL is not installed: run `apt-get install -y postgresql` (or set BENCH_DATABASE_URL to a server you own).');
  }
  const versions = readdirSync(base).sort((a, b) => Number(b) - Number(a));
  return path.join(base, versions[0], 'bin');
}

/** initdb and postgres refuse to run as root: run them as the postgres user then. */
function asPostgres(cmd, args) {
  return process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
}

/**
 * A throw-away PostgreSQL server in a temp dir on a free loopback port, tuned for benchmarks
 * the way a cache database would be run (fsync off: the cache can be rebuilt).
 */
export async function startPostgres({ logDir } = {}) {
  const bin = pgBinDir();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ec-bench-pg-'));
  chmodSync(dir, 0o777);
  const data = path.join(dir, 'data');
  const port = await freePort();
  const [initCmd, initArgs] = asPostgres(path.join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
  execFileSync(initCmd, initArgs, { stdio: 'pipe' });
  const [cmd, args] = asPostgres(path.join(bin, 'postgres'), [
    '-D', data, '-p', String(port), '-h', '127.0.0.1', '-k', dir,
    '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off',
    '-c', 'max_connections=200', '-c', 'shared_buffers=256MB',
  ]);
  const child = spawnTracked(cmd, args, { logFile: logDir ? path.join(logDir, 'postgres.log') : undefined });
  await waitFor(() => canConnect(port), 'PostgreSQL', 30_000, child);
  // Accepting TCP is not yet accepting queries.
  await sleep(300);
  const version = (() => {
    try {
      return execFileSync(path.join(bin, 'postgres'), ['--version'], { encoding: 'utf8' }).trim();
    } catch {
      return 'unknown';
    }
  })();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    version,
    async stop() {
      await stopChild(child, 'SIGINT');
      if (existsSync(path.join(data, 'postmaster.pid'))) {
        // runuser did not pass the signal on: ask pg_ctl, which reads the postmaster's PID from its own file.
        const [c, a] = asPostgres(path.join(bin, 'pg_ctl'), ['-D', data, 'stop', '-m', 'immediate']);
        try {
          execFileSync(c, a, { stdio: 'ignore', timeout: 15_000 });
        } catch {
          /* best effort */
        }
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** GET url until it answers 2xx. */
export async function waitHttp(url, what, timeoutMs, child) {
  await waitFor(async () => (await fetch(url, { signal: AbortSignal.timeout(2000) })).ok, what, timeoutMs, child);
}

/** Reads VmRSS of a process, in bytes (null when it is gone). */
export function rssOf(pid) {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}
