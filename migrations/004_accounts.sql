-- When a key was last used, to the minute: written in batches off the hot path (at most once a
-- minute per key), never once per request.
ALTER TABLE api_keys ADD COLUMN last_used_at timestamptz;

-- Self-service accounts (SIGNUP_ENABLED): one account owns one tenant. `email` is stored
-- normalised (trimmed, lowercased, NFC), so the unique constraint is the duplicate check.
-- `password_hash` is a PHC string (argon2id); the password itself is never stored.
CREATE TABLE accounts (
  id            bigserial PRIMARY KEY,
  tenant_id     bigint NOT NULL UNIQUE REFERENCES tenants(id) ON DELETE CASCADE,
  email         text NOT NULL UNIQUE,
  password_hash text NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  last_login_at timestamptz,
  -- Set by the operator's `accounts revoke`: tenant JWTs issued at or before it are refused.
  sessions_revoked_at timestamptz
);

-- Refresh tokens: random, shown once, stored as a sha256. Each login starts a family; a
-- refresh replaces the token with a successor in the same family (`replaced_at` set). Using a
-- replaced token again means it leaked: the whole family is revoked.
CREATE TABLE refresh_tokens (
  id          bigserial PRIMARY KEY,
  account_id  bigint NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
  family      uuid NOT NULL,
  token_hash  bytea NOT NULL UNIQUE,
  created_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz NOT NULL,
  replaced_at timestamptz,
  revoked_at  timestamptz
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family);
CREATE INDEX refresh_tokens_account ON refresh_tokens (account_id);
