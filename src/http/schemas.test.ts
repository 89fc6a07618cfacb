import { describe, expect, it } from 'vitest';
import { DomainError } from '../core/errors.js';
import { EmbedBatchBody, EmbedBody, EmbeddingsBody, parseBody, parseInput } from './schemas.js';

const err = (fn: () => unknown): DomainError => {
  try {
    fn();
  } catch (e) {
    return e as DomainError;
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
    expect(e).toMatchObject({ kind: 'invalid_input', param: 'encoding_format' });
    expect(err(() => parseBody(EmbeddingsBody, { input: 'x' })).message).toBe("Missing required parameter: 'model'.");
  });

  it('says a wrong type is a wrong type, not a missing parameter', () => {
    expect(err(() => parseBody(EmbeddingsBody, { model: 1, input: 'x' }))).toMatchObject({
      kind: 'invalid_input',
      param: 'model',
      message: "Invalid type for 'model': expected a string, but got an integer instead.",
    });
    expect(err(() => parseBody(EmbeddingsBody, { model: null, input: 'x' })).message).toBe("Invalid type for 'model': expected a string, but got null instead.");
    expect(err(() => parseBody(EmbeddingsBody, { model: 'm', input: 'x', dimensions: '8' })).message).toBe(
      "Invalid type for 'dimensions': expected a number, but got a string instead.",
    );
    expect(err(() => parseBody(EmbeddingsBody, { model: 'm', input: 'x', dimensions: 1.5 })).message).toBe('dimensions must be an integer');
    expect(err(() => parseBody(EmbedBatchBody, { texts: ['a', 2] }))).toMatchObject({
      param: 'texts',
      message: "Invalid type for 'texts[1]': expected a string, but got an integer instead.",
    });
    expect(err(() => parseBody(EmbedBatchBody, { texts: 'a' })).message).toBe("Invalid type for 'texts': expected an array, but got a string instead.");
    expect(err(() => parseBody(EmbedBody, {})).message).toBe("Missing required parameter: 'text'.");
  });

  it('refuses lone surrogates, naming the input, and keeps well-formed pairs', () => {
    const lone = 'caf\uD800e';
    expect(err(() => parseInput(lone, 10))).toMatchObject({ kind: 'invalid_input', param: 'input', message: expect.stringMatching(/^'input' contains a lone UTF-16 surrogate/) });
    expect(err(() => parseInput(['ok', 'x\uDC00'], 10))).toMatchObject({ param: 'input', message: expect.stringMatching(/^'input\[1\]' contains a lone UTF-16 surrogate/) });
    expect(parseInput(['\uD83D\uDE00', '\uFFFD'], 10)).toHaveLength(2);
    expect(err(() => parseBody(EmbedBody, { text: '\uDBFF' }))).toMatchObject({ param: 'text', message: expect.stringMatching(/^'text' contains a lone/) });
    expect(err(() => parseBody(EmbedBatchBody, { texts: ['a', 'b', '\uD800'] }))).toMatchObject({ param: 'texts', message: expect.stringMatching(/^'texts\[2\]' contains a lone/) });
  });
});
