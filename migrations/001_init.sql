-- Tenants own API keys and cache rows. Tenant 0 is the shared `public` pool that tenants may
-- opt in to (read-through, write-through).
CREATE TABLE tenants (
  id           bigserial PRIMARY KEY,
  name         text NOT NULL UNIQUE,
  tier         text NOT NULL DEFAULT 'free',
  share_public boolean NOT NULL DEFAULT false,
  created_at   timestamptz NOT NULL DEFAULT now()
);
INSERT INTO tenants (id, name, tier) VALUES (0, 'public', 'system');

-- Keys are shown once; only a sha256 of the whole key is kept. `prefix` finds the row and is
-- what `keys list` shows; the hash is compared in constant time.
CREATE TABLE api_keys (
  id           bigserial PRIMARY KEY,
  tenant_id    bigint NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  prefix       text NOT NULL UNIQUE,
  key_hash     bytea NOT NULL,
  name         text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  revoked_at   timestamptz
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id);

-- The cache. Never the plaintext input: a sha256 of it. The vector is stored once at full
-- dimension as little-endian float32 bytes; `dimensions` is derived at read time.
CREATE TABLE embeddings (
  tenant_id     bigint NOT NULL,
  model         text NOT NULL,
  model_version text NOT NULL,
  input_hash    bytea NOT NULL,
  dims          integer NOT NULL,
  vector        bytea NOT NULL,
  tokens        integer NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  last_hit_at   timestamptz NOT NULL DEFAULT now(),
  hits          bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (tenant_id, model, model_version, input_hash)
);
-- Eviction walks the least recently hit rows of a tenant.
CREATE INDEX embeddings_tenant_last_hit ON embeddings (tenant_id, last_hit_at);

-- Usage per tenant, day and model, written in batches off the hot path.
CREATE TABLE usage_daily (
  tenant_id     bigint NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  day           date NOT NULL,
  model         text NOT NULL,
  requests      bigint NOT NULL DEFAULT 0,
  inputs        bigint NOT NULL DEFAULT 0,
  hits          bigint NOT NULL DEFAULT 0,
  misses        bigint NOT NULL DEFAULT 0,
  prompt_tokens bigint NOT NULL DEFAULT 0,
  backend_ms    double precision NOT NULL DEFAULT 0,
  PRIMARY KEY (tenant_id, day, model)
);
