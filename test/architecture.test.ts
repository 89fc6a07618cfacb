/**
 * The layering, checked: http -> core -> (store | backends), with auth, security, limits and
 * admin beside core. No folder imports another that imports it back (directly or around a
 * cycle), and the lower layers never reach up.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = path.resolve(import.meta.dirname, '../src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) return sourceFiles(p);
    return /\.ts$/.test(name) && !/\.test\.ts$/.test(name) ? [p] : [];
  });
}

/** `src/core/x.ts` -> `core`; files at the top of src (cli.ts, server.ts) are the composition root. */
function folderOf(file: string): string {
  const rel = path.relative(SRC, file).split(path.sep);
  // core/domain.ts holds the types the store persists: a leaf that imports nothing, so the store
  // may use it without the store and core importing each other.
  if (rel.join('/').replace(/\.[jt]s$/, '') === 'core/domain') return 'core/domain';
  if (rel.length > 1) return rel[0];
  // The logger and the validated config are read by every layer; the rest of the top is wiring.
  const base = rel[0].replace(/\.[jt]s$/, '');
  return base === 'log' ? '(log)' : base === 'config' ? '(config)' : '(root)';
}

function folderGraph(): Map<string, Set<string>> {
  const graph = new Map<string, Set<string>>();
  for (const file of sourceFiles(SRC)) {
    const from = folderOf(file);
    const edges = graph.get(from) ?? new Set<string>();
    graph.set(from, edges);
    // Type-only imports count too: a cycle of types is still a cycle of knowledge.
    for (const m of readFileSync(file, 'utf8').matchAll(/(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g)) {
      const to = folderOf(path.resolve(path.dirname(file), m[1]));
      if (to !== from) edges.add(to);
    }
  }
  return graph;
}

function findCycle(graph: Map<string, Set<string>>): string[] | null {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (n: string): string[] | null => {
    if (state.get(n) === 'done') return null;
    if (state.get(n) === 'open') return [...stack.slice(stack.indexOf(n)), n];
    state.set(n, 'open');
    stack.push(n);
    for (const m of graph.get(n) ?? []) {
      const c = visit(m);
      if (c) return c;
    }
    stack.pop();
    state.set(n, 'done');
    return null;
  };
  for (const n of graph.keys()) {
    const c = visit(n);
    if (c) return c;
  }
  return null;
}

describe('architecture', () => {
  const graph = folderGraph();

  it('has no folder-level import cycle', () => {
    expect(findCycle(graph)).toBeNull();
  });

  it('keeps core/domain a leaf', () => {
    expect([...(graph.get('core/domain') ?? [])]).toEqual([]);
  });

  it.each([
    ['store', ['http', 'backends', 'auth', 'limits', 'admin', '(root)']],
    ['backends', ['http', 'store', 'auth', 'limits', 'admin', '(root)']],
    ['core', ['http', 'admin', 'backends', 'providers', 'auth', '(root)']],
    ['security', ['http', 'core', 'store', 'backends', 'admin', '(root)']],
  ])('%s does not import %j', (folder, forbidden) => {
    const edges = [...(graph.get(folder) ?? [])];
    expect(edges.filter((e) => forbidden.includes(e))).toEqual([]);
  });
});
