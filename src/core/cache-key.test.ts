import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { cacheScope, hashBytes, inputHash, memoryKey } from './cache-key.js';
import type { ModelSpec } from './types.js';

const spec: ModelSpec = {
  id: 'nomic-embed-text-v1.5-search_query',
  cacheModel: 'nomic-embed-text-v1.5',
  version: 'v1',
  dimensions: 768,
  maxInputTokens: 8192,
  dimensionsMethod: 'layernorm-truncate',
  defaultTaskType: 'search_query',
  ownedBy: 'local',
  created: 0,
};

describe('cache keys', () => {
  it('hash the exact input: no case or whitespace folding', () => {
    const h = (text: string) => hashBytes(inputHash({ kind: 'text', text })).toString('hex');
    expect(h('Hello')).not.toBe(h('hello'));
    expect(h('a b')).not.toBe(h('a  b'));
    expect(h('x')).toBe(h('x'));
    expect(hashBytes(inputHash({ kind: 'text', text: 'x' }))).toHaveLength(32);
  });

  it('is sha256 over a type tag and the UTF-8 text', () => {
    const want = createHash('sha256').update(Buffer.from([0])).update('héllo', 'utf8').digest('hex');
    expect(hashBytes(inputHash({ kind: 'text', text: 'héllo' })).toString('hex')).toBe(want);
  });

  it('hashes token ids as a tag and their int32 bytes, as rows already stored were keyed', () => {
    const ids = Int32Array.from([1, 2, 70000]);
    const want = createHash('sha256').update(Buffer.from([1])).update(Buffer.from(ids.buffer)).digest();
    expect(hashBytes(inputHash({ kind: 'tokens', ids: [1, 2, 70000] })).equals(want)).toBe(true);
  });

  it('never lets token ids collide with a text', () => {
    const tokens = inputHash({ kind: 'tokens', ids: [1, 2, 3] });
    expect(tokens).not.toBe(inputHash({ kind: 'text', text: '1,2,3' }));
    expect(tokens).not.toBe(inputHash({ kind: 'tokens', ids: [1, 2, 4] }));
  });

  it('scopes by model and task type, shared by the aliases of one model', () => {
    expect(cacheScope(spec, 'search_query')).toEqual({ model: 'nomic-embed-text-v1.5#search_query', modelVersion: 'v1' });
    expect(cacheScope({ ...spec, id: 'nomic-embed-text-v1.5' }, 'search_query')).toEqual(cacheScope(spec, 'search_query'));
    expect(cacheScope(spec, null).model).toBe('nomic-embed-text-v1.5');
  });

  it('keeps tenants apart in memory keys', () => {
    const h = inputHash({ kind: 'text', text: 'x' });
    const scope = cacheScope(spec, null);
    expect(memoryKey(1, scope, h)).not.toBe(memoryKey(2, scope, h));
    expect(memoryKey(1, scope, h)).not.toBe(memoryKey(1, { ...scope, modelVersion: 'v2' }, h));
  });
});
