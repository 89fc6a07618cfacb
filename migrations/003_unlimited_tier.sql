-- Self-hosting defaults: a built-in tier with no rate limits and no row cap, the default
-- DEFAULT_TIER. free, pro and team stay for operators who host others. An operator who made a
-- tier of this name already keeps it.
INSERT INTO tiers (name, requests_per_day, burst_per_second, tokens_per_minute, max_cached_rows, backends)
VALUES ('unlimited', NULL, NULL, NULL, NULL, '{byok,upstream,local}')
ON CONFLICT (name) DO NOTHING;
