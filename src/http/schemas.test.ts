import { describe, expect, it } from 'vitest';
import { ApiError } from '../core/errors.js';
import { EmbeddingsBody, parseBody, parseInput } from './schemas.js';

const err = (fn: () => unknown): ApiError => {
  try {
    fn();
  } catch (e) {
    return e as ApiError;
  }
  throw new Error('expected a throw');
};

describe('request schemas', () => {
  it('accepts OpenAI’s four input forms', () => {
    expect(parseInput('a', 10)).toEqual([{ kind: 'text', text: 'a' }]);
    expect(parseInput(['a', 'b'], 10)).toHaveLength(2);
    expect(parseInput([1, 2, 3], 10)).toEqual([{ kind: 'tokens', ids: [1, 2, 3] }]);
    expect(parseInput([[1], [2, 3]], 10)).toEqual([{ kind: 'tokens', ids: [1] }, { kind: 'tokens', ids: [2, 3] }]);
  });

  it('names the offending index', () => {
    expect(err(() => parseInput(['ok', ''], 10)).message).toMatch(/input\[1\]/);
    expect(err(() => parseInput([[1], 'x'], 10)).message).toMatch(/input\[1\]/);
  });

  it('counts inputs against the limit, and a token array as one input', () => {
    expect(err(() => parseInput(['a', 'b', 'c'], 2)).message).toMatch(/at most 2/);
    expect(parseInput([1, 2, 3, 4, 5], 2)).toHaveLength(1);
  });

  it('keeps unknown fields (extensions must not break clients) and validates known ones', () => {
    expect(parseBody(EmbeddingsBody, { model: 'm', input: 'x', extra: 1 })).toMatchObject({ extra: 1 });
    const e = err(() => parseBody(EmbeddingsBody, { model: 'm', input: 'x', encoding_format: 'hex' }));
    expect(e).toMatchObject({ status: 400, param: 'encoding_format' });
    expect(err(() => parseBody(EmbeddingsBody, { input: 'x' })).message).toBe("Missing required parameter: 'model'.");
  });
});
