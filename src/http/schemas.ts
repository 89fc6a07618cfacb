import { z } from 'zod';
import { DomainError } from '../core/errors.js';
import { TASK_TYPES, type EmbedInput } from '../core/types.js';

// Node 20 has String.prototype.isWellFormed; TypeScript's ES2022 lib does not declare it yet.
const isWellFormed = (s: string): boolean => (s as string & { isWellFormed(): boolean }).isWellFormed();

/**
 * A lone UTF-16 surrogate would be folded to U+FFFD when hashed as UTF-8, so two different
 * inputs would share a cache key: refuse it (parseBody words the message with the path).
 */
const LONE_SURROGATE = 'lone_surrogate';
const wellFormed = (s: z.ZodString) => s.refine(isWellFormed, { params: { reason: LONE_SURROGATE } });

const loneSurrogate = (where: string) =>
  `${where} contains a lone UTF-16 surrogate (an unpaired \\uD800-\\uDFFF escape), which is not valid Unicode text. Send well-formed text (escape pairs together, or U+FFFD).`;

/** OpenAI's POST /v1/embeddings body. `input` is checked by parseInput for precise messages. */
export const EmbeddingsBody = z.looseObject({
  input: z.unknown(),
  model: z.string().min(1, 'you must provide a model parameter'),
  encoding_format: z.enum(['float', 'base64'], { error: "encoding_format must be 'float' or 'base64'" }).optional(),
  dimensions: z
    .number()
    .int('dimensions must be an integer')
    .min(1, 'dimensions must be at least 1')
    .optional(),
  user: z.string().optional(),
  /** nomic extension: which task prefix to apply (local models only). */
  task_type: z.enum(TASK_TYPES, { error: `task_type must be one of ${TASK_TYPES.join(', ')}` }).optional(),
});
export type EmbeddingsBody = z.infer<typeof EmbeddingsBody>;

/** Native POST /v1/embed. */
export const EmbedBody = z.looseObject({
  text: wellFormed(z.string().min(1, 'text must be a non-empty string')),
  model: z.string().min(1).optional(),
  dimensions: EmbeddingsBody.shape.dimensions,
  task_type: EmbeddingsBody.shape.task_type,
});
export type EmbedBody = z.infer<typeof EmbedBody>;

/** Native POST /v1/embed/batch. */
export const EmbedBatchBody = z.looseObject({
  texts: z.array(wellFormed(z.string().min(1, 'texts must not contain empty strings'))).min(1, 'texts must not be empty'),
  model: z.string().min(1).optional(),
  dimensions: EmbeddingsBody.shape.dimensions,
  task_type: EmbeddingsBody.shape.task_type,
});
export type EmbedBatchBody = z.infer<typeof EmbedBatchBody>;

/** zod's first issue as an invalid_input DomainError naming the parameter, in OpenAI's words. */
export function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    invalid('The request body must be a JSON object.', null);
  }
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  // OpenAI names the top-level field as param and the exact place in the message (`texts[2]`).
  const param = issue.path.length > 0 ? String(issue.path[0]) : null;
  const where = issue.path.reduce<string>((acc, k) => (typeof k === 'number' ? `${acc}[${k}]` : acc ? `${acc}.${String(k)}` : String(k)), '');
  return invalid(messageOf(issue, valueAt(body, issue.path), where), param);
}

function messageOf(issue: z.core.$ZodIssue, value: unknown, where: string): string {
  if (issue.code === 'custom' && issue.params?.reason === LONE_SURROGATE) return loneSurrogate(`'${where}'`);
  if (issue.code !== 'invalid_type' || !where) return issue.message;
  if (value === undefined) return `Missing required parameter: '${where}'.`;
  // zod reports a fractional number against .int() as a type issue: the schema's message says it better.
  if (issue.expected === 'int' && typeof value === 'number') return issue.message;
  return `Invalid type for '${where}': expected ${article(issue.expected === 'int' ? 'integer' : issue.expected)}, but got ${describe(value)} instead.`;
}

const article = (noun: string) => `${/^[aeiou]/.test(noun) ? 'an' : 'a'} ${noun}`;

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'an integer' : 'a decimal';
  return article(typeof value);
}

function valueAt(body: unknown, path: readonly PropertyKey[]): unknown {
  let v = body;
  for (const k of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[k];
  }
  return v;
}

function invalid(message: string, param: string | null): never {
  throw new DomainError('invalid_input', message, { param });
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
    if (!isWellFormed(input)) invalid(loneSurrogate("'input'"), 'input');
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
      if (!isWellFormed(x)) invalid(loneSurrogate(`'input[${i}]'`), 'input');
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
