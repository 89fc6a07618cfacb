import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { Logger } from '../log.js';
import type { Sql } from '../store/db.js';
import { ackChanges, changeBounds, changesSince, listenChanges, listenersBehind, publishChange, pruneChanges, removeListener } from '../store/change-feed.js';
import type { AdminChange } from './changes.js';

/**
 * Every admin change reaches every running process: the publisher logs it and NOTIFYs in one
 * statement, then waits (bounded) until every live server has applied it, so a revocation or a
 * deletion has taken effect everywhere when the verb returns. Servers LISTEN (PostgreSQL) and
 * also reconcile against the log periodically (a lost notification, a reconnect). On the
 * embedded store NOTIFY does not cross connections (pglite-socket runs every connection in one
 * backend and hands a query's output to the connection that sent it), so servers poll the log
 * often instead.
 */

const Id = z.number().int().nonnegative();
export const AdminChangeSchema: z.ZodType<AdminChange> = z.discriminatedUnion('type', [
  z.object({ type: z.literal('tenant_created'), tenantId: Id }),
  z.object({ type: z.literal('tenant_updated'), tenantId: Id }),
  z.object({ type: z.literal('tenant_deleted'), tenantId: Id }),
  z.object({ type: z.literal('key_created'), prefix: z.string(), tenantId: Id }),
  z.object({ type: z.literal('key_revoked'), prefix: z.string(), tenantId: Id }),
  z.object({ type: z.literal('tokens_revoked'), tenantId: Id }),
  z.object({ type: z.literal('sessions_revoked'), tenantId: Id }),
  z.object({ type: z.literal('tier_changed'), name: z.string() }),
  z.object({ type: z.literal('providers_changed'), tenantId: Id }),
  z.object({ type: z.literal('cache_cleared'), tenantId: Id, model: z.string().optional() }),
]);
const Notification = z.object({ seq: z.number().int().positive(), change: z.unknown(), origin: z.string().nullable().optional() });

/** A server that has not heartbeaten for this long is not waited for (crashed, or cut off). */
const LIVE_SECONDS = 15;
const HEARTBEAT_MS = 2000;
/** A missing sequence number (a rolled-back insert) stops holding the floor after this long. */
const GAP_GRACE_MS = 5000;
/** Log entries are kept this long; a process further behind forgets every cache instead. */
const KEEP_SECONDS = 3600;
const PRUNE_EVERY_MS = 60_000;

export interface PublishOptions {
  /** How long to wait for the other servers to apply the change (0: do not wait). */
  waitMs?: number;
  logger?: Logger;
}

/**
 * Publishes a change and waits until every live server applied it (or `waitMs` passed: then
 * they apply it when their reconciliation runs). Returns the servers still behind.
 */
export async function publishAndWait(sql: Sql, change: AdminChange, opts: PublishOptions = {}): Promise<{ seq: number; behind: string[] }> {
  const seq = await publishChange(sql, change);
  return { seq, behind: await waitForListeners(sql, seq, change, opts) };
}

async function waitForListeners(sql: Sql, seq: number, change: AdminChange, opts: PublishOptions): Promise<string[]> {
  const waitMs = opts.waitMs ?? 2000;
  if (waitMs <= 0) return [];
  const until = Date.now() + waitMs;
  let behind = await listenersBehind(sql, seq, LIVE_SECONDS);
  while (behind.length > 0 && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 10));
    behind = await listenersBehind(sql, seq, LIVE_SECONDS);
  }
  if (behind.length > 0) {
    opts.logger?.warn({ change, behind }, 'some running servers did not confirm a change in time; they apply it at their next reconciliation');
  }
  return behind;
}

export interface ChangeFeedOptions {
  sql: Sql;
  /** LISTEN for notifications (PostgreSQL); false polls the log every `reconcileMs` (embedded). */
  listen: boolean;
  /** How often the log is read for changes a notification did not bring. */
  reconcileMs: number;
  /** Applies a change to this process's caches (reactInProcess). */
  apply: (change: AdminChange) => void | Promise<void>;
  /** Forgets every cache: for a process that fell behind what the log still holds. */
  resetAll: () => void | Promise<void>;
  logger: Logger;
  /** How long a publish waits for the other servers. */
  publishWaitMs?: number;
}

/** One per server: applies everyone's changes here and publishes this process's own. */
export class ChangeFeed {
  readonly id = `${process.pid}-${randomBytes(4).toString('hex')}`;
  /** Every change up to here is applied (or was a gap that never filled). */
  private floor = 0;
  /** Applied changes above the floor. */
  private readonly seen = new Set<number>();
  /** Missing sequence numbers above the floor, with when they were first noticed. */
  private readonly gaps = new Map<number, number>();
  private timer: NodeJS.Timeout | null = null;
  private unlisten: (() => Promise<void>) | null = null;
  private reconciling: Promise<void> | null = null;
  private lastAck = { seq: -1, at: 0 };
  private lastPrune = 0;
  private stopped = false;
  /** Notifications being applied (stop waits for them, so no ack lands after the listener is removed). */
  private readonly handling = new Set<Promise<void>>();

  constructor(private readonly opts: ChangeFeedOptions) {}

  async start(): Promise<void> {
    // Caches start empty: nothing logged before now can be stale here.
    this.floor = (await changeBounds(this.opts.sql)).newest;
    await this.ack(true);
    if (this.opts.listen) {
      let first = true;
      this.unlisten = await listenChanges(
        this.opts.sql,
        (payload) => {
          const handling = this.onNotification(payload).finally(() => this.handling.delete(handling));
          this.handling.add(handling);
        },
        () => {
          // A reconnect may have missed notifications: read the log at once.
          if (!first) void this.reconcile();
          first = false;
        },
      );
    }
    this.timer = setInterval(() => void this.reconcile(), this.opts.reconcileMs);
    this.timer.unref();
  }

  /** Applies a change made by this process here first, then tells the others and waits for them. */
  async publish(change: AdminChange): Promise<void> {
    try {
      await this.opts.apply(change);
    } catch (err) {
      // The change is made: the others must still hear of it. (Only a tier reload can fail here; the catalogue reloads itself periodically.)
      this.opts.logger.warn({ err, change }, 'applying a change in this process failed');
    }
    const seq = await publishChange(this.opts.sql, change, this.id);
    this.markApplied(seq);
    // Applied here already (its own notification is then skipped): acknowledged as such.
    await ackChanges(this.opts.sql, this.id, seq);
    await waitForListeners(this.opts.sql, seq, change, { waitMs: this.opts.publishWaitMs, logger: this.opts.logger });
  }

  /** The sequence number every change up to which this process has applied. */
  get appliedUpTo(): number {
    return this.floor;
  }

  private async onNotification(payload: string): Promise<void> {
    let n;
    try {
      n = Notification.parse(JSON.parse(payload));
    } catch (err) {
      this.opts.logger.warn({ err }, 'ignoring a malformed change notification');
      return;
    }
    await this.applyLogged(n.seq, n.change, n.origin ?? null);
    // A failed ack only delays publishers; the next reconciliation acks again.
    await this.ack(false).catch((err: unknown) => this.opts.logger.warn({ err }, 'acknowledging a change failed'));
  }

  private async applyLogged(seq: number, raw: unknown, origin: string | null): Promise<void> {
    if (seq <= this.floor || this.seen.has(seq)) return;
    // Published by this process, which applied it before publishing (its notification can come
    // back before the publish itself has returned).
    if (origin === this.id) return this.markApplied(seq);
    const parsed = AdminChangeSchema.safeParse(raw);
    if (parsed.success) {
      try {
        await this.opts.apply(parsed.data);
      } catch (err) {
        this.opts.logger.warn({ err, change: parsed.data }, 'applying a change failed');
      }
    } else {
      // A change of a newer version of the server: forget everything rather than guess.
      this.opts.logger.warn({ seq }, 'unknown change in the log: forgetting every cache');
      await this.opts.resetAll();
    }
    this.markApplied(seq);
  }

  private markApplied(seq: number): void {
    if (seq <= this.floor) return;
    const now = Date.now();
    for (let s = this.floor + 1; s < seq; s++) if (!this.seen.has(s) && !this.gaps.has(s)) this.gaps.set(s, now);
    this.seen.add(seq);
    this.gaps.delete(seq);
    this.advance(now, 0);
  }

  /**
   * Moves the floor over applied changes. A gap is passed only by a reconciliation that read the
   * log up to `holesUpTo` without finding it for GAP_GRACE_MS (rolled back, never committed):
   * a gap that is merely a lost notification is still in the log and gets applied first.
   */
  private advance(now: number, holesUpTo: number): void {
    for (;;) {
      const next = this.floor + 1;
      const gapSince = this.gaps.get(next);
      if (this.seen.delete(next)) this.floor = next;
      else if (gapSince !== undefined && next <= holesUpTo && now - gapSince > GAP_GRACE_MS) {
        this.gaps.delete(next);
        this.floor = next;
      } else return;
    }
  }

  /** Reads the log after the floor, applies what this process has not seen, heartbeats. */
  reconcile(): Promise<void> {
    this.reconciling ??= this.reconcileOnce()
      .catch((err: unknown) => this.opts.logger.warn({ err }, 'change reconciliation failed; retrying'))
      .finally(() => (this.reconciling = null));
    return this.reconciling;
  }

  private async reconcileOnce(): Promise<void> {
    if (this.stopped) return;
    const { sql } = this.opts;
    const rows = await changesSince(sql, this.floor);
    if (rows.length > 0 && rows[0].seq > this.floor + 1) {
      const { oldest } = await changeBounds(sql);
      if (oldest > this.floor + 1) {
        // Entries this process never applied were pruned: it cannot know what they were.
        this.opts.logger.warn({ floor: this.floor, oldest }, 'missed changes that are no longer logged: forgetting every cache');
        await this.opts.resetAll();
        this.floor = oldest - 1;
        this.seen.clear();
        this.gaps.clear();
      }
    }
    for (const r of rows) await this.applyLogged(r.seq, r.change, r.origin);
    // Every committed change above the floor up to the last row read is applied now.
    this.advance(Date.now(), rows.length > 0 ? rows[rows.length - 1].seq : 0);
    await this.ack(false);
    if (Date.now() - this.lastPrune > PRUNE_EVERY_MS) {
      this.lastPrune = Date.now();
      await pruneChanges(sql, KEEP_SECONDS);
    }
  }

  /** Tells publishers what this process has applied (every change up to the floor); doubles as the heartbeat. */
  private async ack(force: boolean): Promise<void> {
    if (this.stopped) return;
    const applied = this.floor;
    const now = Date.now();
    if (!force && applied === this.lastAck.seq && now - this.lastAck.at < HEARTBEAT_MS) return;
    this.lastAck = { seq: applied, at: now };
    await ackChanges(this.opts.sql, this.id, applied);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.unlisten?.().catch(() => {});
    await this.reconciling;
    await Promise.all(this.handling);
    await removeListener(this.opts.sql, this.id).catch(() => {});
  }
}
