import { z } from 'zod';
import { ApiError } from '../core/errors.js';
import { TASK_TYPES, type EmbedInput } from '../core/types.js';

/** OpenAI's POST /v1/embeddings body. `input` is checked by parseInput for precise messages. */
export const EmbeddingsBody = z.looseObject({
  input: z.unknown(),
  model: z.string({ error: 'you must provide a model parameter' }).min(1, 'you must provide a model parameter'),
  encoding_format: z.enum(['float', 'base64'], { error: "encoding_format must be 'float' or 'base64'" }).optional(),
  dimensions: z
    .number({ error: 'dimensions must be an integer' })
    .int('dimensions must be an integer')
    .min(1, 'dimensions must be at least 1')
    .optional(),
  user: z.string({ error: 'user must be a string' }).optional(),
  /** nomic extension: which task prefix to apply (local models only). */
  task_type: z.enum(TASK_TYPES, { error: `task_type must be one of ${TASK_TYPES.join(', ')}` }).optional(),
});
export type EmbeddingsBody = z.infer<typeof EmbeddingsBody>;

/** Native POST /v1/embed. */
export const EmbedBody = z.looseObject({
  text: z.string({ error: 'text must be a non-empty string' }).min(1, 'text must be a non-empty string'),
  model: z.string().min(1).optional(),
  dimensions: EmbeddingsBody.shape.dimensions,
  task_type: EmbeddingsBody.shape.task_type,
});
export type EmbedBody = z.infer<typeof EmbedBody>;

/** Native POST /v1/embed/batch. */
export const EmbedBatchBody = z.looseObject({
  texts: z.array(z.string().min(1, 'texts must not contain empty strings'), { error: 'texts must be an array of strings' }).min(1, 'texts must not be empty'),
  model: z.string().min(1).optional(),
  dimensions: EmbeddingsBody.shape.dimensions,
  task_type: EmbeddingsBody.shape.task_type,
});
export type EmbedBatchBody = z.infer<typeof EmbedBatchBody>;

/** zod's first issue as an OpenAI invalid_request_error naming the parameter. */
export function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw ApiError.invalid('The request body must be a JSON object.');
  }
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const param = issue.path.length > 0 ? issue.path.map(String).join('.') : null;
  const missing = issue.code === 'invalid_type' && issue.input === undefined;
  const message = missing && param ? `Missing required parameter: '${param}'.` : issue.message;
  return invalid(message, param);
}

function invalid(message: string, param: string | null): never {
  throw ApiError.invalid(message, param);
}

const isTokenId = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x) && x >= 0 && x <= 0x7fffffff;

/**
 * OpenAI's four input forms -> EmbedInput[]: a string, an array of strings, an array of token
 * ids, an array of token-id arrays. Empty inputs and mixed forms are refused, naming the index.
 */
export function parseInput(input: unknown, maxInputs: number): EmbedInput[] {
  if (input === undefined || input === null) invalid("Missing required parameter: 'input'.", 'input');
  if (typeof input === 'string') {
    if (input.length === 0) invalid("'input' cannot be an empty string.", 'input');
    return [{ kind: 'text', text: input }];
  }
  if (!Array.isArray(input)) {
    invalid("'input' must be a string, an array of strings, an array of token ids, or an array of token-id arrays.", 'input');
  }
  if (input.length === 0) invalid("'input' cannot be an empty array.", 'input');
  if (typeof input[0] === 'number') {
    if (!input.every(isTokenId)) invalid("'input' as token ids must contain only non-negative integers.", 'input');
    return [{ kind: 'tokens', ids: input as number[] }];
  }
  if (input.length > maxInputs) {
    invalid(`'input' has ${input.length} items; at most ${maxInputs} inputs are allowed per request. Split it into several requests.`, 'input');
  }
  const first = typeof input[0];
  const out: EmbedInput[] = new Array(input.length);
  for (let i = 0; i < input.length; i++) {
    const x: unknown = input[i];
    if (typeof x === 'string' && first === 'string') {
      if (x.length === 0) invalid(`'input[${i}]' cannot be an empty string.`, 'input');
      out[i] = { kind: 'text', text: x };
    } else if (Array.isArray(x) && Array.isArray(input[0])) {
      if (x.length === 0) invalid(`'input[${i}]' cannot be an empty token array.`, 'input');
      if (!x.every(isTokenId)) invalid(`'input[${i}]' must contain only non-negative integer token ids.`, 'input');
      out[i] = { kind: 'tokens', ids: x as number[] };
    } else {
      invalid(`'input[${i}]' is invalid: all inputs must be strings, or all must be token-id arrays.`, 'input');
    }
  }
  return out;
}
