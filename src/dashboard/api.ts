import type { LiveFigures } from '../core/live.js';
import type { TenantStats } from '../core/stats.js';
import type { PublicStats, UsageReport } from '../core/usage-report.js';
import { currentToken } from './session.js';

export type { LiveFigures, PublicStats, UsageReport };
export type UsageRow = UsageReport['data'][number];
export type TenantUsage = UsageReport & { tenant: string; tier: string; summary: Omit<TenantStats, 'by_day'> };

export interface KeyView {
  prefix: string;
  name: string | null;
  created_at: string;
  last_used_at?: string | null;
  revoked_at: string | null;
}

export interface ProviderView {
  name: string;
  base_url: string;
  models: string[];
  api_key_last4: string;
  created_at: string;
}

/** A refused or failed call, with the server's OpenAI-shaped message when it sent one. */
export class RequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code: string | null = null,
  ) {
    super(message);
    this.name = 'RequestError';
  }
}

/** Calls a public route (no credential yet): signup, login, logout. */
export async function callPublic<T>(path: string, body: unknown): Promise<T> {
  return call<T>('POST', path, body, null);
}

/** Calls the server's own API with the signed-in secret as `Authorization: Bearer`. */
export async function call<T>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown, token: string | null = currentToken()): Promise<T> {
  const publicRoute = token === null && path.startsWith('/v1/auth/');
  if (!token && !publicRoute) throw new RequestError(401, 'Not signed in.');
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'omit',
      cache: 'no-store',
    });
  } catch {
    throw new RequestError(0, 'The server did not answer. Is it running?');
  }
  const text = await res.text();
  let json: unknown = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!res.ok) {
    const err = (json as { error?: { message?: string; code?: string | null } } | null)?.error;
    throw new RequestError(res.status, err?.message ?? `${res.status} ${res.statusText}`, err?.code ?? null);
  }
  return json as T;
}

export type Period = { label: string; hours: number };
export const PERIODS: Period[] = [
  { label: 'Last 24 hours', hours: 24 },
  { label: 'Last 7 days', hours: 24 * 7 },
  { label: 'Last 30 days', hours: 24 * 30 },
  { label: 'Last 90 days', hours: 24 * 90 },
];
/** The server answers hourly groups for at most 31 days. */
export const MAX_HOURLY_HOURS = 24 * 31;

export type Grain = 'day' | 'hour';

/** The query of a period ending now, in the grain asked for (whole days by day). */
export function rangeQuery(hours: number, grain: Grain, now = new Date()): { from: string; to: string } {
  const to = new Date(now.getTime());
  if (grain === 'hour') {
    const from = new Date(Math.floor(now.getTime() / 3_600_000) * 3_600_000 - (hours - 1) * 3_600_000);
    return { from: from.toISOString(), to: to.toISOString() };
  }
  const days = Math.max(1, Math.round(hours / 24));
  const from = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() - (days - 1)));
  return { from: from.toISOString().slice(0, 10), to: to.toISOString().slice(0, 10) };
}

export function qs(params: Record<string, string>): string {
  return new URLSearchParams(params).toString();
}
