-- Usage per tenant, UTC hour and model: the dashboard's hourly charts and backend latency.
-- Written by the same batched statement as usage_daily (src/store/usage.ts), so the request
-- path is unchanged. `last_seen_at` is the write time of the latest batch: "last activity"
-- to within the usage flush interval.
CREATE TABLE usage_hourly (
  tenant_id     bigint NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  hour          timestamptz NOT NULL,
  model         text NOT NULL,
  requests      bigint NOT NULL DEFAULT 0,
  inputs        bigint NOT NULL DEFAULT 0,
  hits          bigint NOT NULL DEFAULT 0,
  misses        bigint NOT NULL DEFAULT 0,
  prompt_tokens bigint NOT NULL DEFAULT 0,
  hit_tokens    bigint NOT NULL DEFAULT 0,
  backend_ms    double precision NOT NULL DEFAULT 0,
  last_seen_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, hour, model)
);
-- Cross-tenant reports read a range of hours.
CREATE INDEX usage_hourly_hour ON usage_hourly (hour);
