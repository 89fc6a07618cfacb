import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { LiveFigures } from '../../core/live.js';
import { tenantStats } from '../../core/stats.js';
import { usageReport } from '../../core/usage-report.js';
import type { Sql } from '../../store/db.js';
import { USAGE_GROUPS, type UsageGroup } from '../../store/usage-report.js';
import { parseBody } from '../schemas.js';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
/** Widest ranges: a year and a bit of days, a month of hours (about 750 points). */
const MAX_SPAN_MS: Record<UsageGroup, number> = { tenant: 400 * DAY_MS, model: 400 * DAY_MS, day: 400 * DAY_MS, hour: 31 * DAY_MS };
const DEFAULT_SPAN_MS: Record<UsageGroup, number> = { tenant: 30 * DAY_MS, model: 30 * DAY_MS, day: 30 * DAY_MS, hour: 48 * HOUR_MS };

const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;
const Instant = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2}))?$/, 'use a UTC date (2026-12-01) or an ISO date-time with its zone (2026-12-01T10:00:00Z)')
  .refine((s) => !Number.isNaN(Date.parse(s)), 'not a real date');

function usageQuery(groups: readonly UsageGroup[], defaultGroup: UsageGroup) {
  return z
    .object({
      from: Instant.optional(),
      to: Instant.optional(),
      group_by: z.enum(groups as [UsageGroup, ...UsageGroup[]], { message: `group_by must be one of ${groups.join(', ')}` }).default(defaultGroup),
    })
    .transform((q) => {
      // A date alone means that whole UTC day: `to=2026-12-01` includes the 1st.
      const to = q.to ? new Date(Date.parse(q.to) + (DATE_ONLY.test(q.to) ? DAY_MS : 0)) : new Date();
      const from = q.from ? new Date(Date.parse(q.from)) : new Date(to.getTime() - DEFAULT_SPAN_MS[q.group_by]);
      return { group: q.group_by, from, to };
    })
    .refine((q) => q.from < q.to, { message: '`from` must be before `to`.', path: ['from'] })
    .refine((q) => q.to.getTime() - q.from.getTime() <= MAX_SPAN_MS[q.group], {
      message: 'The range is too wide for this group_by: at most 400 days, or 31 days by hour.',
      path: ['from'],
    });
}

const AdminUsageQuery = usageQuery(USAGE_GROUPS, 'tenant');
const TenantUsageQuery = usageQuery(['day', 'hour', 'model'], 'day');

export interface UsageRoutesOptions {
  sql: Sql;
  /** USD per million tokens, by model. */
  prices: Record<string, number>;
  /** Writes usage still held in memory, so a report includes the last requests. */
  flush: () => Promise<void>;
}

export interface AdminUsageRoutesOptions extends UsageRoutesOptions {
  live: () => Promise<LiveFigures>;
}

/**
 * Cross-tenant usage for the operator: GET /usage?from=&to=&group_by=tenant|model|day|hour,
 * and GET /live (this process's figures now). Registered inside the admin scope, whose hook
 * authenticates the admin.
 */
export async function adminUsageRoutes(app: FastifyInstance, opts: AdminUsageRoutesOptions): Promise<void> {
  app.get('/usage', async (request) => {
    const q = parseBody(AdminUsageQuery, request.query);
    await opts.flush();
    return usageReport(opts.sql, { ...q, prices: opts.prices });
  });
  app.get('/live', async () => opts.live());
}

/**
 * A tenant's own usage: GET /usage?from=&to=&group_by=day|hour|model, with `summary` holding
 * the all-time figures of /v1/stats (the same function computes both). Registered where
 * requests are authenticated as a tenant.
 */
export async function tenantUsageRoutes(app: FastifyInstance, opts: UsageRoutesOptions): Promise<void> {
  app.get('/usage', async (request) => {
    const q = parseBody(TenantUsageQuery, request.query);
    await opts.flush();
    const [report, stats] = await Promise.all([
      usageReport(opts.sql, { ...q, prices: opts.prices, tenantId: request.tenant.id }),
      tenantStats(opts.sql, request.tenant, opts.prices),
    ]);
    const { by_day: _byDay, ...summary } = stats;
    return { ...report, tenant: request.tenant.name, tier: request.tenant.tier, summary };
  });
}
