-- Tiers: what a tenant may do. NULL means unlimited. `backends` lists what serves its misses:
-- `byok` (its own providers), `upstream` (the server's default upstream), `local` (server models).
CREATE TABLE tiers (
  name              text PRIMARY KEY,
  requests_per_day  integer,
  burst_per_second  integer,
  tokens_per_minute integer,
  max_cached_rows   bigint,
  backends          text[] NOT NULL
);
INSERT INTO tiers (name, requests_per_day, burst_per_second, tokens_per_minute, max_cached_rows, backends) VALUES
  ('free',   1000,    5,   100000,   10000,    '{byok}'),
  ('pro',    100000,  50,  2000000,  1000000,  '{byok,upstream,local}'),
  ('team',   1000000, 200, 10000000, 10000000, '{byok,upstream,local}'),
  ('system', NULL,    NULL, NULL,    NULL,     '{}');

-- A tenant's own OpenAI-compatible providers (BYOK). The key is sealed with AES-256-GCM under
-- MASTER_KEY (key_id names which one, for rotation); only its last four characters are shown.
CREATE TABLE providers (
  id             bigserial PRIMARY KEY,
  tenant_id      bigint NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  name           text NOT NULL,
  base_url       text NOT NULL,
  models         text[] NOT NULL,
  key_id         text NOT NULL,
  key_iv         bytea NOT NULL,
  key_tag        bytea NOT NULL,
  key_ciphertext bytea NOT NULL,
  key_last4      text NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  UNIQUE (tenant_id, name)
);

-- Tokens that hits saved (what the misses had cost): the money-saved estimate.
ALTER TABLE usage_daily ADD COLUMN hit_tokens bigint NOT NULL DEFAULT 0;
