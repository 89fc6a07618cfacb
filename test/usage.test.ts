import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addUsage } from '../src/store/usage.js';
import { ensureTenant } from '../src/store/tenants.js';
import { upsertTier } from '../src/store/tiers.js';
import { startTestServer, type TestServer } from './support/server.js';

const ADMIN = 'admin-token-0123456789abcdef';
const MODEL = 'text-embedding-3-small';

let t: TestServer;
let acme: string;
let globex: string;

beforeAll(async () => {
  t = await startTestServer({ env: { ADMIN_TOKEN: ADMIN, PRICES: JSON.stringify({ [MODEL]: 1_000_000 }) } });
  acme = await t.key('acme');
  globex = await t.key('globex');
});
afterAll(async () => t?.close());

const get = (url: string, token: string) => t.server.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}` } });
const embed = (key: string, input: string | string[]) =>
  t.server.app.inject({ method: 'POST', url: '/v1/embeddings', headers: { authorization: `Bearer ${key}` }, payload: { model: MODEL, input } });

describe('usage API', () => {
  it('counts misses and hits per tenant, model, day and hour, with tokens and money saved', async () => {
    // acme: 3 misses, then 2 hits + 1 miss. globex: 1 miss, 1 hit.
    expect((await embed(acme, ['a1', 'a2', 'a3'])).statusCode).toBe(200);
    expect((await embed(acme, ['a1', 'a2', 'a4'])).statusCode).toBe(200);
    expect((await embed(globex, 'g1')).statusCode).toBe(200);
    expect((await embed(globex, 'g1')).statusCode).toBe(200);

    const byTenant = await get('/admin/v1/usage?group_by=tenant', ADMIN);
    expect(byTenant.statusCode).toBe(200);
    const body = byTenant.json();
    const row = (name: string) => body.data.find((d: { key: string }) => d.key === name);
    expect(row('acme')).toMatchObject({ requests: 2, inputs: 6, hits: 2, misses: 4, tier: 'unlimited', rows_stored: 4 });
    expect(row('acme').hit_ratio).toBeCloseTo(2 / 6);
    expect(row('acme').tokens_saved).toBeGreaterThan(0);
    expect(row('acme').tokens_computed + row('acme').tokens_saved).toBe(row('acme').prompt_tokens);
    // At 1 000 000 USD per million tokens, a saved token is worth a dollar.
    expect(row('acme').money_saved_usd).toBeCloseTo(row('acme').tokens_saved);
    expect(row('acme').last_activity).toMatch(/^\d{4}-\d{2}-\d{2}T/);
    expect(row('globex')).toMatchObject({ requests: 2, hits: 1, misses: 1, rows_stored: 1 });
    expect(body.totals).toMatchObject({ requests: 4, inputs: 8, hits: 3, misses: 5, rows_stored: 5, tenants: 2 });

    const byHour = (await get('/admin/v1/usage?group_by=hour', ADMIN)).json();
    expect(byHour.data).toHaveLength(1);
    expect(byHour.data[0].key).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:00:00Z$/);
    // The hourly table holds the same counts as the daily one.
    const { rows_stored: _r, tenants: _t, ...dailyTotals } = body.totals;
    expect(byHour.totals).toEqual(dailyTotals);
    const byDay = (await get('/admin/v1/usage?group_by=day', ADMIN)).json();
    expect(byDay.data.map((d: { key: string }) => d.key)).toEqual([new Date().toISOString().slice(0, 10)]);
    const byModel = (await get('/admin/v1/usage?group_by=model', ADMIN)).json();
    expect(byModel.data).toMatchObject([{ key: MODEL, inputs: 8, hits: 3 }]);
  });

  it("shows a tenant only its own usage, and /v1/stats's figures as its summary", async () => {
    const res = await get('/v1/usage?group_by=hour', globex);
    expect(res.statusCode).toBe(200);
    const u = res.json();
    expect(u.tenant).toBe('globex');
    expect(u.totals).toMatchObject({ requests: 2, hits: 1, misses: 1 });
    const stats = (await get('/v1/stats', globex)).json();
    const { by_day: _d, ...summary } = stats;
    expect(u.summary).toEqual(summary);
    expect((await get('/v1/usage?group_by=tenant', globex)).json().error.param).toBe('group_by');
  });

  it('refuses bad ranges with OpenAI-shaped errors and non-admins with 401', async () => {
    const bad = await get('/admin/v1/usage?from=yesterday', ADMIN);
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error).toMatchObject({ type: 'invalid_request_error', param: 'from' });
    const reversed = await get('/admin/v1/usage?from=2026-02-01&to=2026-01-01', ADMIN);
    expect(reversed.json().error.message).toMatch(/before/);
    expect((await get('/admin/v1/usage?group_by=hour&from=2025-01-01&to=2025-12-01', ADMIN)).statusCode).toBe(400);
    expect((await get('/admin/v1/usage', acme)).statusCode).toBe(401);
    expect((await get('/admin/v1/live', acme)).statusCode).toBe(401);
  });

  it('takes whole days for date-only ranges', async () => {
    const today = new Date().toISOString().slice(0, 10);
    const r = (await get(`/admin/v1/usage?group_by=day&from=${today}&to=${today}`, ADMIN)).json();
    expect(r.data).toHaveLength(1);
    const before = (await get('/admin/v1/usage?group_by=day&from=2020-01-01&to=2020-01-31', ADMIN)).json();
    expect(before.data).toEqual([]);
  });

  it('writes each delta to its own hour, in one statement with the day', async () => {
    const sql = t.server.db.sql;
    const tn = await ensureTenant(sql, 'hours', 'unlimited');
    const base = { tenantId: tn.id, day: '2026-01-02', model: MODEL, requests: 1, inputs: 2, hits: 1, misses: 1, promptTokens: 10, hitTokens: 5, backendMs: 3 };
    await addUsage(sql, [
      { ...base, hour: '2026-01-02T07' },
      { ...base, model: `${MODEL}#x`, hour: '2026-01-02T07' },
      { ...base, hour: '2026-01-02T08', hits: 2 },
    ]);
    const hours = await sql<{ h: string; hits: string }[]>`
      SELECT to_char(hour AT TIME ZONE 'UTC', 'HH24') AS h, sum(hits) AS hits FROM usage_hourly WHERE tenant_id = ${tn.id} GROUP BY 1 ORDER BY 1`;
    expect(hours.map((r) => [r.h, Number(r.hits)])).toEqual([['07', 2], ['08', 2]]);
    const days = await sql<{ hits: string; requests: string }[]>`SELECT hits, requests FROM usage_daily WHERE tenant_id = ${tn.id} AND model = ${MODEL}`;
    expect(days.map((d) => [Number(d.hits), Number(d.requests)])).toEqual([[3, 2]]);
    const r = (await get('/admin/v1/usage?group_by=hour&from=2026-01-02T07:00:00Z&to=2026-01-02T08:00:00Z', ADMIN)).json();
    expect(r.data).toMatchObject([{ key: '2026-01-02T07:00:00Z', requests: 2, hits: 2 }]);
  });

  it("reports this process's live figures", async () => {
    const res = await get('/admin/v1/live', ADMIN);
    expect(res.statusCode).toBe(200);
    const live = res.json();
    expect(live.store).toMatchObject({ kind: 'postgres', ok: true });
    expect(live.redis).toEqual({ configured: false });
    expect(live.hot_cache.bytes).toBeGreaterThan(0);
    expect(live.cache.hits).toBeGreaterThanOrEqual(3);
    expect(live.backends.upstream.calls).toBeGreaterThanOrEqual(3);
    expect(live.backends.upstream.p99_ms).toBeGreaterThanOrEqual(live.backends.upstream.p50_ms);
  });

  it("does not count a tenant's polling of /v1/usage against its limits", async () => {
    const sql = t.server.db.sql;
    await upsertTier(sql, { name: 'two-a-day', requestsPerDay: 2, burstPerSecond: null, tokensPerMinute: null, maxCachedRows: null, backends: ['upstream'] });
    await t.server.tiers.refresh();
    const key = await t.key('poller', { tier: 'two-a-day' });
    for (let i = 0; i < 5; i++) expect((await get('/v1/usage', key)).statusCode).toBe(200);
    expect((await embed(key, 'p1')).statusCode).toBe(200);
    expect((await embed(key, 'p2')).statusCode).toBe(200);
    expect((await embed(key, 'p3')).statusCode).toBe(429);
    expect((await get('/v1/usage', 'ec_' + 'x'.repeat(32))).statusCode).toBe(401);
  });

  it('has no public stats page unless enabled', async () => {
    expect((await t.server.app.inject({ url: '/stats.json' })).statusCode).toBe(404);
    expect((await t.server.app.inject({ url: '/stats' })).statusCode).toBe(404);
  });
});
