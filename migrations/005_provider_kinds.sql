-- Provider kinds (issue 11): a tenant's provider is no longer only OpenAI-compatible.
-- `kind` names the wire format (openai, azure-openai, cohere, voyage, gemini, template);
-- `options` holds what that kind needs (api_version, deployment, request template, paths...),
-- validated by the application per kind. Existing rows are OpenAI-compatible, as before.
ALTER TABLE providers ADD COLUMN kind text NOT NULL DEFAULT 'openai';
ALTER TABLE providers ADD COLUMN options jsonb NOT NULL DEFAULT '{}';
