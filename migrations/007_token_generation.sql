-- Tenant JWTs bind to the tenant's id and this generation: `tokens revoke` bumps it, and every
-- token minted before no longer verifies. A tenant recreated under the same name has a new id,
-- so its predecessor's tokens never work for it.
ALTER TABLE tenants ADD COLUMN token_generation integer NOT NULL DEFAULT 0;

-- Bumped by every clear: rows computed before a clear (write-behind still pending in some
-- process) carry the epoch they were computed under and are dropped at insert if it moved on.
ALTER TABLE tenants ADD COLUMN cache_epoch integer NOT NULL DEFAULT 0;

-- Admin changes, in order, for every running process: NOTIFY carries each one at once; this log
-- is what a process reconciles against (a missed notification, a reconnect, the embedded store
-- where NOTIFY does not cross connections). Old entries are pruned.
-- `origin` names the publishing process (which applied the change itself already).
CREATE TABLE admin_changes (
  seq    bigserial PRIMARY KEY,
  change jsonb NOT NULL,
  origin text,
  at     timestamptz NOT NULL DEFAULT now()
);

-- The running servers and the last change each has applied: a change's publisher waits (bounded)
-- until every live server has applied it, so e.g. a deletion returns only once no server still
-- serves the tenant. A server whose heartbeat is old is not waited for.
CREATE TABLE change_listeners (
  id          text PRIMARY KEY,
  applied_seq bigint NOT NULL,
  seen_at     timestamptz NOT NULL DEFAULT now()
);
