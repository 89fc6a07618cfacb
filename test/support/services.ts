/**
 * Real PostgreSQL and Redis servers on loopback, each in a temporary folder of its own, plus the
 * child-process helpers behind them. One module for two users: vitest's globalSetup
 * (test/global-setup.ts; CI may pass TEST_DATABASE_URL / TEST_REDIS_URL instead) and the
 * benchmark harness, which runs under plain node and loads this file through tsx
 * (bench/lib/services.mjs). Every child is tracked so that an error or a Ctrl-C can still stop
 * them all, by PID, never by name.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, createWriteStream, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface RunningService {
  url: string;
  stop(): Promise<void>;
}

export interface RunningPostgres extends RunningService {
  /** `postgres --version`, for reports. */
  version: string;
  /** The directory of its unix socket (`.s.PGSQL.<port>`) and that port. */
  socketDir: string;
  port: number;
  /** Stops the server (fast shutdown: connections are cut), keeping its data, for an outage. */
  pause(): Promise<void>;
  /** Starts it again on the same port and data after pause(). */
  resume(): Promise<void>;
}

export interface RunningRedis extends RunningService {
  /** The redis-server process, for SIGSTOP/SIGCONT. */
  pid: number;
  /** SIGSTOP: the socket stays open but nothing is answered (a stalled Redis). */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
}

/** Every child still running, so that exit paths can stop them. */
const children = new Set<ChildProcess>();

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `check` until it answers true; fails early when `child` has already exited. */
export async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 30_000, child?: ChildProcess): Promise<void> {
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

export function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv;
  /** stdout and stderr are appended here; without it they are discarded. */
  logFile?: string;
  cwd?: string;
}

/** Spawns a tracked child (see killAllTracked). */
export function spawnTracked(cmd: string, args: string[], { env, logFile, cwd }: SpawnOptions = {}): ChildProcess {
  const child = spawn(cmd, args, { env: env ?? process.env, cwd, stdio: logFile ? ['ignore', 'pipe', 'pipe'] : 'ignore' });
  if (logFile) {
    const out = createWriteStream(logFile, { flags: 'a' });
    child.stdout?.pipe(out);
    child.stderr?.pipe(out);
  }
  children.add(child);
  child.once('exit', () => children.delete(child));
  // A missing binary is reported by waitFor's timeout or the caller; never an unhandled 'error'.
  child.once('error', () => children.delete(child));
  return child;
}

export function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<void> {
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
export function killAllTracked(): void {
  for (const c of children) {
    try {
      c.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

function pgBinDir(): string {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) {
    throw new Error('PostgreSQL is not installed: run `apt-get install -y postgresql` (or set TEST_DATABASE_URL / BENCH_DATABASE_URL to a server you own).');
  }
  const versions = readdirSync(base).sort((a, b) => Number(b) - Number(a));
  return path.join(base, versions[0], 'bin');
}

/** initdb and postgres refuse to run as root: run them as the postgres user then. */
function asPostgres(cmd: string, args: string[]): [string, string[]] {
  return process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
}

export interface PostgresOptions {
  /** Folder for postgres.log; without it the server's output is discarded. */
  logDir?: string;
  /** Extra `-c name=value` settings (the benchmark gives shared_buffers). */
  settings?: Record<string, string>;
}

/**
 * A throw-away PostgreSQL server in a temp dir on a free loopback port, run the way a cache
 * database would be (fsync off: the cache can be rebuilt).
 */
export async function startPostgres({ logDir, settings = {} }: PostgresOptions = {}): Promise<RunningPostgres> {
  const bin = pgBinDir();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ec-pg-'));
  chmodSync(dir, 0o777);
  const data = path.join(dir, 'data');
  const port = await freePort();
  const [initCmd, initArgs] = asPostgres(path.join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
  execFileSync(initCmd, initArgs, { stdio: 'pipe' });
  const all = { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off', max_connections: '200', ...settings };
  const [cmd, args] = asPostgres(path.join(bin, 'postgres'), [
    '-D', data, '-p', String(port), '-h', '127.0.0.1', '-k', dir,
    ...Object.entries(all).flatMap(([k, v]) => ['-c', `${k}=${v}`]),
  ]);
  const launch = async () => {
    const c = spawnTracked(cmd, args, { logFile: logDir ? path.join(logDir, 'postgres.log') : undefined });
    await waitFor(() => canConnect(port), 'PostgreSQL', 30_000, c);
    // Accepting TCP is not yet accepting queries: wait for the startup to finish.
    await sleep(300);
    return c;
  };
  // pg_ctl signals the postmaster through its own PID file: the runuser wrapper (as root)
  // does not pass signals on, so signalling the child alone could leave postgres running.
  const halt = async (c: ChildProcess) => {
    const [pc, pa] = asPostgres(path.join(bin, 'pg_ctl'), ['-D', data, 'stop', '-m', 'fast', '-t', '30']);
    await execFileAsync(pc, pa, { timeout: 35_000 }).catch(() => {
      /* not running any more; the signal below is the fallback */
    });
    await stopChild(c, 'SIGINT');
  };
  let child: ChildProcess | null = await launch();
  let version = 'unknown';
  try {
    version = execFileSync(path.join(bin, 'postgres'), ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    /* only for reports */
  }
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    version,
    socketDir: dir,
    port,
    async stop() {
      if (child) await halt(child);
      child = null;
      rmSync(dir, { recursive: true, force: true });
    },
    async pause() {
      if (child) await halt(child);
      child = null;
    },
    async resume() {
      child ??= await launch();
    },
  };
}

/** A throw-away Redis (no persistence) on a free loopback port. */
export async function startRedis({ logDir }: { logDir?: string } = {}): Promise<RunningRedis> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ec-redis-'));
  const port = await freePort();
  const child = spawnTracked('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], {
    logFile: logDir ? path.join(logDir, 'redis.log') : undefined,
  });
  await waitFor(() => canConnect(port), 'Redis (redis-server; apt-get install -y redis-server, or set TEST_REDIS_URL)', 30_000, child);
  const signal = (sig: NodeJS.Signals) => {
    if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, sig);
  };
  return {
    url: `redis://127.0.0.1:${port}`,
    pid: child.pid ?? -1,
    pause: () => signal('SIGSTOP'),
    resume: () => signal('SIGCONT'),
    async stop() {
      signal('SIGCONT'); // a paused redis-server would not act on SIGTERM
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
