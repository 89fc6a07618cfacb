import { describe, expect, it } from 'vitest';
import { HotCache } from './hot-cache.js';

const v = (n: number) => ({ bytes: Buffer.alloc(16, n), tokens: n });

describe('hot cache', () => {
  it("drops one tenant's entries and keeps the others'", () => {
    const hot = new HotCache(1 << 20);
    hot.set('1\u0000a', v(1), 1);
    hot.set('1\u0000b', v(2), 1);
    hot.set('2\u0000a', v(3), 2);
    hot.dropTenant(1);
    expect(hot.get('1\u0000a')).toBeUndefined();
    expect(hot.get('1\u0000b')).toBeUndefined();
    expect(hot.get('2\u0000a')).toEqual(v(3));
    expect(hot.stats.entries).toBe(1);
    // The tenant caches again after the drop, and a second drop finds the new entries.
    hot.set('1\u0000a', v(4), 1);
    expect(hot.get('1\u0000a')).toEqual(v(4));
    hot.dropTenant(1);
    expect(hot.get('1\u0000a')).toBeUndefined();
  });

  it('keeps its per-tenant index in step with evictions and replacements', () => {
    // Room for about two entries: the third evicts the least recently used.
    const hot = new HotCache(2 * (16 + 20 + 200) + 10);
    hot.set('1\u0000a', v(1), 1);
    hot.set('1\u0000a', v(2), 1); // replaced, still indexed
    hot.set('2\u0000b', v(3), 2);
    hot.set('2\u0000c', v(4), 2); // evicts 1/a
    expect(hot.get('1\u0000a')).toBeUndefined();
    hot.dropTenant(2);
    expect(hot.stats.entries).toBe(0);
    hot.set('1\u0000a', v(5), 1);
    hot.dropTenant(1);
    expect(hot.stats).toMatchObject({ entries: 0, bytes: 0 });
  });

  it('is a no-op when disabled', () => {
    const hot = new HotCache(0);
    hot.set('1\u0000a', v(1), 1);
    hot.dropTenant(1);
    expect(hot.get('1\u0000a')).toBeUndefined();
  });
});
