/**
 * A fake Azure OpenAI resource: `/openai/deployments/{deployment}/embeddings?api-version=…`
 * and the version-less `/openai/v1/embeddings`, the key in `api-key`, Azure's error bodies.
 */
import { l2Normalise } from '../../core/dimensions.js';
import { fakeVector } from '../fake-upstream.js';
import { errorAnswer, isObject, isStringArray, startFake, tokensOf, unknownFields, type FakeAnswer, type FakeKind, type FakeProvider } from './harness.js';

/** Deployment name -> the model it runs and that model's dimension. */
export interface FakeDeployment {
  model: string;
  dimensions: number;
}

export function azureKind(apiKey: string, deployments: Record<string, FakeDeployment>): FakeKind {
  const error = (status: number, message: string, o: { retryAfterSeconds?: number } = {}): FakeAnswer => errorAnswer(status, { error: { code: String(status), message } }, o.retryAfterSeconds, { 'x-ratelimit-remaining-requests': '0' });
  return {
    error,
    handle(req) {
      const dep = /^\/openai\/deployments\/([^/]+)\/embeddings$/.exec(req.path);
      const v1 = req.path === '/openai/v1/embeddings';
      if (req.method !== 'POST' || (!dep && !v1)) return error(404, 'Resource not found');
      if (dep && !/^\d{4}-\d{2}-\d{2}(-preview)?$/.test(req.query.get('api-version') ?? '')) return error(404, 'Resource not found');
      if (req.headers['api-key'] !== apiKey) {
        return error(401, 'Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.');
      }
      if (v1 && req.headers.authorization) return error(401, 'Send the key in api-key, or a Microsoft Entra token as the bearer.');
      const b = req.body;
      if (!isObject(b)) return error(400, "'$' is invalid.");
      const extra = unknownFields(b, ['input', 'model', 'encoding_format', 'dimensions', 'user', 'input_type']);
      if (extra.length > 0) return error(400, `Unrecognized request argument supplied: ${extra[0]}`);
      const name = dep ? decodeURIComponent(dep[1]) : String(b.model);
      const d = deployments[name];
      if (!d) return error(404, 'The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again.');
      const input = typeof b.input === 'string' ? [b.input] : b.input;
      if (!isStringArray(input) || input.length === 0) return error(400, "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.");
      if (input.length > 2048) return error(400, 'Too many inputs. The max number of inputs is 2048.');
      const dims = typeof b.dimensions === 'number' ? b.dimensions : d.dimensions;
      let tokens = 0;
      const data = input.map((t, index) => {
        tokens += tokensOf(t);
        let v = fakeVector(d.model, t, d.dimensions);
        if (dims !== d.dimensions) v = l2Normalise(v, dims);
        const embedding = b.encoding_format === 'base64' ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') : Array.from(v);
        return { object: 'embedding', index, embedding };
      });
      return { status: 200, inputs: input.length, body: { object: 'list', data, model: d.model, usage: { prompt_tokens: tokens, total_tokens: tokens } } };
    },
  };
}

export function startFakeAzure(o: { apiKey: string; deployments: Record<string, FakeDeployment>; latencyMs?: number }): Promise<FakeProvider> {
  return startFake(azureKind(o.apiKey, o.deployments), { latencyMs: o.latencyMs });
}
