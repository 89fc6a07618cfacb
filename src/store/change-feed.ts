import type postgres from 'postgres';
import type { Sql } from './db.js';

/**
 * The SQL side of change propagation: an ordered log of changes (`admin_changes`), a NOTIFY on
 * one channel per change, and the table of running listeners with what each has applied. The
 * payloads are opaque JSON here; admin/broadcast.ts gives them their types.
 */

export const CHANNEL = 'embedding_cache_changes';

export interface LoggedChange {
  seq: number;
  change: unknown;
  /** The publishing process, when it listens too (it applied the change itself). */
  origin: string | null;
}

/** Logs a change and notifies listeners in one statement (one transaction); returns its sequence number. */
export async function publishChange(sql: Sql, change: postgres.JSONValue, origin: string | null = null): Promise<number> {
  const [r] = await sql<{ seq: string }[]>`
    WITH c AS (INSERT INTO admin_changes (change, origin) VALUES (${sql.json(change)}, ${origin}) RETURNING seq, change, origin)
    SELECT seq, pg_notify(${CHANNEL}, json_build_object('seq', seq, 'change', change, 'origin', origin)::text) FROM c`;
  return Number(r.seq);
}

/** Changes after `seq`, in order (at most `limit`). */
export async function changesSince(sql: Sql, seq: number, limit = 1000): Promise<LoggedChange[]> {
  const rows = await sql<{ seq: string; change: unknown; origin: string | null }[]>`
    SELECT seq, change, origin FROM admin_changes WHERE seq > ${seq} ORDER BY seq LIMIT ${limit}`;
  return rows.map((r) => ({ seq: Number(r.seq), change: r.change, origin: r.origin }));
}

/** The newest sequence number and the oldest one still logged (0 when empty). */
export async function changeBounds(sql: Sql): Promise<{ newest: number; oldest: number }> {
  const [r] = await sql<{ newest: string | null; oldest: string | null }[]>`SELECT max(seq) AS newest, min(seq) AS oldest FROM admin_changes`;
  return { newest: Number(r.newest ?? 0), oldest: Number(r.oldest ?? 0) };
}

/** Drops log entries, and listeners not heard of, older than `seconds` (a process that far behind resets all its caches). */
export async function pruneChanges(sql: Sql, seconds: number): Promise<number> {
  await sql`DELETE FROM change_listeners WHERE seen_at < now() - make_interval(secs => ${seconds})`;
  const r = await sql`DELETE FROM admin_changes WHERE at < now() - make_interval(secs => ${seconds})`;
  return r.count;
}

/** Records (or refreshes) a listener's heartbeat and the last change it applied. */
export async function ackChanges(sql: Sql, listener: string, appliedSeq: number): Promise<void> {
  await sql`
    INSERT INTO change_listeners (id, applied_seq, seen_at) VALUES (${listener}, ${appliedSeq}, now())
    ON CONFLICT (id) DO UPDATE SET applied_seq = GREATEST(change_listeners.applied_seq, EXCLUDED.applied_seq), seen_at = now()`;
}

export async function removeListener(sql: Sql, listener: string): Promise<void> {
  await sql`DELETE FROM change_listeners WHERE id = ${listener}`;
}

/** Live listeners (heartbeat within `liveSeconds`) that have not applied `seq` yet. */
export async function listenersBehind(sql: Sql, seq: number, liveSeconds: number): Promise<string[]> {
  const rows = await sql<{ id: string }[]>`
    SELECT id FROM change_listeners
    WHERE applied_seq < ${seq} AND seen_at > now() - make_interval(secs => ${liveSeconds})`;
  return rows.map((r) => r.id);
}

/**
 * LISTENs on the channel with a connection of its own. `onListen` runs on every (re)connect,
 * when notifications may have been missed. Resolves to a function that stops listening.
 */
export async function listenChanges(sql: Sql, onPayload: (payload: string) => void, onListen: () => void): Promise<() => Promise<void>> {
  const sub = await sql.listen(CHANNEL, onPayload, onListen);
  return () => sub.unlisten();
}
