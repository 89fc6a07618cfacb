/**
 * What the server asks of PostgreSQL, counted by PostgreSQL itself: transactions committed in
 * the bench database (pg_stat_database). Backends report these when they go idle, at most once
 * a second and at the latest 10 s later (PostgreSQL 15's stats), so a reading waits for that
 * first: take one before and one after a block of runs, not per run.
 */
import postgres from 'postgres';
import { sleep } from './services.mjs';

const SETTLE_MS = 11_000;

export async function pgActivity(url) {
  await sleep(SETTLE_MS);
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const [r] = await sql`SELECT xact_commit::bigint AS commits FROM pg_stat_database WHERE datname = current_database()`;
    return { commits: Number(r.commits), statements: await statementTimes(sql) };
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/**
 * The statements to time inside PostgreSQL (pg_stat_statements), by their text: the server's
 * cache lookup (store/embeddings.ts), its write-behind INSERT, and the cache floor's point
 * lookup (bench/lib/bare-proxy.mjs). A lookup whose plan goes wrong shows here first: its time
 * in PostgreSQL grows while the round trip hides it among the event loop's waits.
 */
const TIMED = [
  ['lookup', /JOIN embeddings e ON e\.tenant_id = k\.t/],
  ['insert', /^\s*INSERT INTO embeddings \(/],
  ['floorLookup', /^\s*SELECT vector, tokens FROM embeddings WHERE/],
];

/** Loads pg_stat_statements into the bench database (the server must preload it); false when it cannot. */
export async function enableStatementStats(url) {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    await sql`CREATE EXTENSION IF NOT EXISTS pg_stat_statements`;
    return true;
  } catch {
    return false;
  } finally {
    await sql.end({ timeout: 5 });
  }
}

async function statementTimes(sql) {
  try {
    const rows = await sql`SELECT query, calls::bigint AS calls, total_exec_time AS ms FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())`;
    const out = Object.fromEntries(TIMED.map(([name]) => [name, { calls: 0, ms: 0 }]));
    for (const r of rows) {
      const hit = TIMED.find(([, re]) => re.test(r.query));
      if (hit) {
        out[hit[0]].calls += Number(r.calls);
        out[hit[0]].ms += Number(r.ms);
      }
    }
    return out;
  } catch {
    return null; // pg_stat_statements not loaded
  }
}

/** Mean time in PostgreSQL per call of each timed statement between two readings (null where none ran). */
export function statementMeans(before, after) {
  if (!before?.statements || !after?.statements) return null;
  return Object.fromEntries(
    TIMED.map(([name]) => {
      const calls = after.statements[name].calls - before.statements[name].calls;
      return [name, calls > 0 ? { calls, meanMs: (after.statements[name].ms - before.statements[name].ms) / calls } : null];
    }),
  );
}

/**
 * Per miss between two readings: transactions (every miss is one lookup transaction; the rest
 * are the write-behind INSERTs and the periodic flushes). The reading's own transaction counts
 * once, and `others` (transactions of other clients in between, such as a reference's
 * lookups) are not the server's: both subtracted.
 */
export function pgPerMiss(before, after, misses, others = 0) {
  if (!before || !after || misses <= 0) return null;
  const commits = after.commits - before.commits - 1 - others;
  const writes = commits - misses;
  return { commitsPerMiss: commits / misses, writeTransactions: writes };
}
