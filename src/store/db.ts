import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import postgres from 'postgres';
import type { Logger } from '../log.js';
import { describePgUrl, pgTarget } from './pg-url.js';

export type Sql = postgres.Sql;

export interface Database {
  sql: Sql;
  /** `postgres` for a server at DATABASE_URL, `embedded` for PGlite under DATA_DIR. */
  kind: 'postgres' | 'embedded';
  /** Rows per cache INSERT that this store writes fastest (see INSERT_BATCH_ROWS). */
  insertBatchRows: number;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  databaseUrl?: string;
  dataDir: string;
  poolSize: number;
  logger: Logger;
  /** Refuse (DatabaseMissingError) instead of creating an embedded database that is not there. */
  mustExist?: boolean;
  /**
   * Refuse (DatabaseInUseError) an embedded database another process already serves: a server
   * must own its store, or it loses its database when that process stops. CLI commands attach.
   */
  exclusive?: boolean;
}

/**
 * Where the database is, resolved one way for the server and every CLI command: DATABASE_URL
 * when set, else the embedded PGlite under DATA_DIR made absolute (a relative DATA_DIR is
 * relative to the directory the process was started in, which is how a CLI run elsewhere
 * used to create a second, empty database).
 */
export type DatabaseLocation =
  | { kind: 'postgres'; url: string; display: string }
  | { kind: 'embedded'; dataDir: string; pgdata: string; socketPath: string; display: string };

export function resolveDatabase(opts: { databaseUrl?: string; dataDir: string }): DatabaseLocation {
  if (opts.databaseUrl) return { kind: 'postgres', url: opts.databaseUrl, display: `PostgreSQL at ${describePgUrl(opts.databaseUrl)} (DATABASE_URL)` };
  const dataDir = path.resolve(opts.dataDir);
  return {
    kind: 'embedded',
    dataDir,
    pgdata: path.join(dataDir, 'pgdata'),
    // The embedded database is served on a unix socket in DATA_DIR, so a second process (the
    // CLI while the server runs) shares it instead of failing to open the same files.
    socketPath: path.join(dataDir, '.s.PGSQL.5432'),
    display: `embedded PostgreSQL in ${path.join(dataDir, 'pgdata')} (DATA_DIR=${dataDir})`,
  };
}

/** Thrown by openDatabase({ mustExist }) where DATA_DIR holds no database and no server's socket. */
export class DatabaseMissingError extends Error {
  constructor(readonly location: Extract<DatabaseLocation, { kind: 'embedded' }>) {
    super(
      `No embedding-cache database at ${location.pgdata} (and no running server's socket in ${location.dataDir}); nothing was created. ` +
        `Point this command at the server's database: run it from the directory the server runs in, or set DATA_DIR=/path/to/the/server's/.embedding-cache ` +
        `(or DATABASE_URL=postgres://... where the server uses PostgreSQL); or start the server first (npm start), or create one with \`embedding-cache migrate\`.`,
    );
    this.name = 'DatabaseMissingError';
  }
}

export class DatabaseInUseError extends Error {
  constructor(readonly location: Extract<DatabaseLocation, { kind: 'embedded' }>) {
    super(
      `Another embedding-cache server is already running on DATA_DIR=${location.dataDir} (its database socket ${location.socketPath} answers; ` +
        `${path.join(location.dataDir, 'server.json')} says where it listens). This one did not start: it would use that server's database and lose it when that server stops. ` +
        `Stop the other server first, or give this one its own DATA_DIR; to run several servers on one store, use PostgreSQL (DATABASE_URL=postgres://...).`,
    );
    this.name = 'DatabaseInUseError';
  }
}

/** True where the location holds a database (embedded: pgdata/ or a live socket; PostgreSQL: always, its errors speak for it). */
export async function databaseExists(location: DatabaseLocation): Promise<boolean> {
  if (location.kind === 'postgres') return true;
  return existsSync(location.pgdata) || (await answers(location.socketPath));
}

/**
 * Rows per INSERT of cached vectors. PostgreSQL takes the write-behind's whole batch (2000). The
 * embedded store is faster with small statements: its socket server joins every incoming chunk
 * of a message into one buffer (quadratic in the message: 2000 1536-d rows are a 24 MB Bind
 * message of hex text) and a large unnest spills to temporary files past work_mem. Measured on
 * 2 cores, inserting 1536-d rows alone: 2000 a statement 1.5-1.7 ms CPU a row, 512 0.6, 256 and
 * 128 0.5.
 */
export const INSERT_BATCH_ROWS = { postgres: 2000, embedded: 256 } as const;

/**
 * One pool for the process. Without DATABASE_URL an embedded PGlite (file-backed under
 * DATA_DIR) is served on a loopback socket, so the same postgres.js code and SQL run on both.
 */
export async function openDatabase(opts: DatabaseOptions): Promise<Database> {
  const location = resolveDatabase(opts);
  opts.logger.info({ database: location.display }, 'database');
  if (location.kind === 'postgres') {
    const sql = connect(location.url, opts.poolSize);
    await typesFetchedOnce(sql);
    return { sql, kind: 'postgres', insertBatchRows: INSERT_BATCH_ROWS.postgres, close: () => sql.end({ timeout: 5 }) };
  }
  const { dataDir, socketPath, pgdata: dir } = location;
  if (await answers(socketPath)) {
    if (opts.exclusive) throw new DatabaseInUseError(location);
    const sql = connectSocket(socketPath);
    return { sql, kind: 'embedded', insertBatchRows: INSERT_BATCH_ROWS.embedded, close: () => sql.end({ timeout: 5 }) };
  }
  if (opts.mustExist && !existsSync(dir)) throw new DatabaseMissingError(location);
  await mkdir(dataDir, { recursive: true });
  await rm(socketPath, { force: true });
  const embedded = await startEmbedded(dir, socketPath, opts.logger);
  opts.logger.info({ dir }, 'embedded Postgres (PGlite) started');
  // PGlite executes one query at a time: one connection from this process.
  const sql = connectSocket(socketPath);
  return {
    sql,
    kind: 'embedded',
    insertBatchRows: INSERT_BATCH_ROWS.embedded,
    async close() {
      await sql.end({ timeout: 5 });
      await embedded.stop();
      await rm(socketPath, { force: true });
    },
  };
}

/**
 * PGlite and its socket server run in a worker thread of their own. PGlite is Postgres compiled
 * to wasm and runs on the thread that calls it: on the main thread every query (a bulk insert
 * of 512 vectors parses megabytes of array text) blocked the event loop that serves requests,
 * and the store could never use a second core the way a PostgreSQL server process does. The
 * worker speaks to this process (and to CLI processes) only through the unix socket.
 *
 * The worker is plain JavaScript given as a string, so that it runs the same from src/ (tests)
 * and dist/; it loads PGlite's CommonJS build from paths resolved here.
 */
const EMBEDDED_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { PGlite } = require(workerData.pglite);
const { PGLiteSocketServer } = require(workerData.socket);
(async () => {
  let db;
  try {
    db = await PGlite.create(workerData.dir);
    // One session serves every connection, and the socket ignores startup parameters.
    for (const [name, value] of Object.entries(workerData.settings)) await db.query('SELECT set_config($1, $2, false)', [name, value]);
  } catch (err) {
    parentPort.postMessage({ type: 'failed', message: String((err && err.message) || err) });
    return;
  }
  const server = new PGLiteSocketServer({ db, path: workerData.socketPath, maxConnections: 8 });
  await server.start();
  parentPort.on('message', async (m) => {
    if (m !== 'stop') return;
    await server.stop().catch(() => {});
    await db.close().catch(() => {});
    parentPort.postMessage({ type: 'stopped' });
  });
  parentPort.postMessage({ type: 'ready' });
})().catch((err) => parentPort.postMessage({ type: 'failed', message: String((err && err.message) || err) }));
`;

type WorkerMessage = { type: 'ready' } | { type: 'stopped' } | { type: 'failed'; message: string };

async function startEmbedded(dir: string, socketPath: string, logger: Logger): Promise<{ stop(): Promise<void> }> {
  const require = createRequire(import.meta.url);
  const worker = new Worker(EMBEDDED_WORKER, {
    eval: true,
    workerData: { dir, socketPath, settings: SESSION_SETTINGS, pglite: require.resolve('@electric-sql/pglite'), socket: require.resolve('@electric-sql/pglite-socket') },
  });
  const next = () =>
    new Promise<WorkerMessage>((resolve, reject) => {
      const onExit = (code: number) => reject(new Error(`the embedded Postgres worker exited (code ${code})`));
      worker.once('error', reject);
      worker.once('exit', onExit);
      worker.once('message', (m: WorkerMessage) => {
        worker.off('error', reject);
        worker.off('exit', onExit);
        resolve(m);
      });
    });
  let first: WorkerMessage;
  try {
    first = await next();
  } catch (err) {
    first = { type: 'failed', message: (err as Error).message };
  }
  if (first.type !== 'ready') {
    await worker.terminate();
    throw new Error(
      `Could not open the embedded Postgres in ${dir} (${first.type === 'failed' ? first.message : first.type}). ` +
        'Is another embedding-cache using this DATA_DIR? Stop it, or set DATA_DIR or DATABASE_URL.',
    );
  }
  // After start-up, a dying worker is the database going away: postgres.js then reports
  // connection errors, which the cache already survives (misses are still served).
  worker.on('error', (err) => logger.error({ err }, 'the embedded Postgres worker failed'));
  return {
    async stop() {
      const stopped = next().catch(() => ({ type: 'stopped' }) as const);
      worker.postMessage('stop');
      await stopped;
      await worker.terminate();
    },
  };
}

function connectSocket(socketPath: string): Sql {
  return postgres({ path: socketPath, user: 'postgres', database: 'postgres', max: 1, onnotice: () => {}, prepare: true });
}

/** True when something accepts connections on the unix socket (a live embedded server). */
function answers(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(socketPath);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** postgres.js and server error codes that mean "the database is not reachable", not "this query is wrong". */
const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EPIPE', 'CONNECT_TIMEOUT', 'CONNECTION_CLOSED', 'CONNECTION_ENDED', 'CONNECTION_DESTROYED']);

/** True for a failure to reach the database (refused, cut, shutting down), as opposed to a failing query. */
export function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return false;
  // 08: connection exception; 57P01-57P03: admin shutdown, crash shutdown, cannot connect now
  return CONNECTION_CODES.has(code) || code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03';
}

/** `p`, or a rejection with code CONNECT_TIMEOUT once `ms` have passed (the query may still settle later). */
export async function withinMs<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error(`the database did not answer within ${ms} ms`), { code: 'CONNECT_TIMEOUT' })), ms);
  });
  p.catch(() => {}); // it may settle after the deadline
  try {
    return await Promise.race([p, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * postgres.js reads the server's array types on every new connection, and a connection cut
 * during that read (a database restarting) rejects a promise nobody handles, which would end
 * the process. The types are the same for the pool's life and shared by its connections: read
 * them once, on the first connection, and not on reconnects.
 */
async function typesFetchedOnce(sql: Sql): Promise<void> {
  try {
    await sql`SELECT 1`;
  } catch (err) {
    await sql.end({ timeout: 1 }).catch(() => {});
    throw err;
  }
  (sql.options as { fetch_types: boolean }).fetch_types = false;
}

function connect(url: string, max: number): Sql {
  const target = pgTarget(url);
  return postgres(target.url, {
    ...(target.host !== undefined ? { host: target.host } : {}),
    ...(target.port !== undefined ? { port: target.port } : {}),
    max,
    onnotice: () => {},
    // postgres.js waits 30 s for a connection by default: during an outage every query would
    // hang that long. Fail in 2 s (callers on the request path give up sooner still).
    connect_timeout: 2,
    // Server-side prepared statements: every hot query is parsed once per connection.
    prepare: true,
    connection: SESSION_SETTINGS,
  });
}

/** Settings of every server session, on PostgreSQL and the embedded store (exported for tests). */
export const SESSION_SETTINGS: Record<string, string> = {
  application_name: 'embedding-cache',
  // The cache's index is hot in memory: a random page costs about what a sequential one does.
  random_page_cost: '1.1',
  // Every statement planned for the table as it is now. A generic plan is cached until the next
  // ANALYZE: one made while `embeddings` held a few rows scans them all (a hash join over the
  // inline 6 KB vectors), and on a fresh table it stayed until the 1k-row ANALYZE, 3-5 ms a
  // lookup (bench miss). PostgreSQL custom-plans the lookup at larger sizes anyway (~0.1 ms).
  plan_cache_mode: 'force_custom_plan',
};
