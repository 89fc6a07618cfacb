import type { Config } from '../config.js';
import { seal } from '../security/secret-box.js';
import { checkProviderUrl, guardedFetch, SsrfError } from '../security/ssrf.js';
import type { Sql } from '../store/db.js';
import { listProviders, upsertProvider, type ProviderRecord } from '../store/providers.js';
import type { Tenant } from '../core/domain.js';
import { ApiError, DomainError } from '../core/errors.js';
import { buildTenantProvider } from '../providers/tenant-providers.js';
import { probeProvider, type ProbeResult } from '../providers/probe.js';
import { checkOptions, DEFAULT_BASE_URLS } from '../backends/providers/options.js';
import type { ProviderKind } from '../backends/providers/errors.js';

/** Admin verbs shared by the admin API and the CLI, so both check the same things. */

export interface NewProvider {
  name: string;
  /** Default `openai`. */
  kind?: ProviderKind;
  /** Absent: the kind's public endpoint (required for azure-openai and template). */
  base_url?: string;
  api_key: string;
  models: string[];
  /** Kind-specific settings (api_version, deployment, request, vectors_path, ...). */
  options?: Record<string, unknown>;
}

/** Validates the URL against the SSRF rules, seals the key under MASTER_KEY, stores the provider. */
export async function addProvider(sql: Sql, config: Pick<Config, 'masterKeys' | 'ssrf'>, tenant: Tenant, p: NewProvider): Promise<ProviderRecord> {
  if (!config.masterKeys) {
    throw new ApiError(400, 'invalid_request_error', 'Provider keys are encrypted at rest: the operator must set MASTER_KEY first (e.g. `openssl rand -hex 32`).', 'api_key', 'master_key_missing');
  }
  const kind = p.kind ?? 'openai';
  const { problems, options } = checkOptions(kind, p.options ?? {}, p.base_url);
  if (problems.length > 0) throw ApiError.invalid(problems.map((x) => `${x.path} ${x.message}`).join('; '), problems[0].path);
  const baseUrl = p.base_url ?? DEFAULT_BASE_URLS[kind]!;
  try {
    checkProviderUrl(baseUrl, config.ssrf);
  } catch (err) {
    if (err instanceof SsrfError) throw ApiError.invalid(err.message, 'base_url');
    throw err;
  }
  return upsertProvider(sql, {
    tenantId: tenant.id,
    name: p.name,
    kind,
    baseUrl,
    models: p.models,
    options: options as Record<string, unknown>,
    key: seal(p.api_key, config.masterKeys),
  });
}

/** What listings show of a provider: never the key, only its last four characters. */
export function providerView(p: ProviderRecord) {
  return {
    name: p.name,
    kind: p.kind,
    base_url: p.baseUrl,
    models: p.models,
    options: p.options,
    api_key_last4: p.key.last4,
    key_id: p.key.keyId,
    created_at: p.createdAt.toISOString(),
  };
}

export function jwtSecretOf(config: Pick<Config, 'jwtSecret'>): string {
  if (!config.jwtSecret) throw new ApiError(400, 'invalid_request_error', 'Set JWT_SECRET (or ADMIN_TOKEN) to mint tokens.', null, 'jwt_disabled');
  return config.jwtSecret;
}

/**
 * One real call through a tenant's provider (SSRF guard and sealed key as in serving, no
 * retries): the dimension, tokens and latency it gave, or the error it maps to.
 */
export async function testProvider(
  sql: Sql,
  config: Pick<Config, 'masterKeys' | 'ssrf' | 'upstream'>,
  tenant: Tenant,
  name: string,
  model?: string,
): Promise<ProbeResult> {
  const p = (await listProviders(sql, tenant.id)).find((x) => x.name === name);
  if (!p) throw new DomainError('not_found', `Tenant ${tenant.name} has no provider ${name}.`, { param: 'provider', code: 'provider_not_found' });
  if (!config.masterKeys) throw new DomainError('unavailable', 'This server has no MASTER_KEY to open stored provider keys; the operator must set MASTER_KEY.');
  if (model !== undefined && !p.models.includes(model)) {
    throw new DomainError('invalid_input', `Provider ${name} serves ${p.models.join(', ')}, not ${model}.`, { param: 'model' });
  }
  const backend = buildTenantProvider(p, { masterKeys: config.masterKeys, fetch: guardedFetch(config.ssrf), timeoutMs: config.upstream.timeoutMs, maxRetries: 0, maxBatch: config.upstream.maxBatch });
  try {
    return await probeProvider(backend, model);
  } finally {
    await backend.close();
  }
}
