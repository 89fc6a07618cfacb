#!/usr/bin/env node
/**
 * Summarises a V8 .cpuprofile (from `node --cpu-prof`): self time per function and per file,
 * idle and GC separated out. Usable alone:  node bench/lib/profile.mjs <file.cpuprofile> [top]
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

function shortUrl(url) {
  if (!url) return '';
  let u = url.replace(/^file:\/\//, '');
  if (u.startsWith(ROOT + '/')) u = u.slice(ROOT.length + 1);
  const nm = u.lastIndexOf('node_modules/');
  if (nm >= 0) u = u.slice(nm);
  return u;
}

export function summariseProfile(file, top = 25) {
  const prof = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  // Self time per node from the samples and their time deltas (microseconds).
  const self = new Map();
  for (let i = 0; i < prof.samples.length; i++) {
    const id = prof.samples[i];
    self.set(id, (self.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0));
  }
  let total = 0;
  const fn = new Map();
  const files = new Map();
  const special = { idle: 0, gc: 0, program: 0 };
  for (const [id, us] of self) {
    total += us;
    const { callFrame } = byId.get(id);
    const name = callFrame.functionName || '(anonymous)';
    if (name === '(idle)') special.idle += us;
    else if (name === '(garbage collector)') special.gc += us;
    else if (name === '(program)') special.program += us;
    const url = shortUrl(callFrame.url);
    const key = `${name} ${url}${url ? `:${callFrame.lineNumber + 1}` : ''}`;
    fn.set(key, (fn.get(key) ?? 0) + us);
    const fkey = url || name;
    files.set(fkey, (files.get(fkey) ?? 0) + us);
  }
  const busy = total - special.idle;
  // Inclusive time of the project's own functions (dist/ or src/): each sample counts once for
  // every distinct project function on its stack.
  const parent = new Map();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const projectKey = (n) => {
    const url = shortUrl(n.callFrame.url);
    if (!/^(dist|src)\//.test(url)) return null;
    return `${n.callFrame.functionName || '(anonymous)'} ${url}:${n.callFrame.lineNumber + 1}`;
  };
  const stackKeys = new Map();
  const keysOf = (id) => {
    let ks = stackKeys.get(id);
    if (ks) return ks;
    const p = parent.get(id);
    const k = projectKey(byId.get(id));
    ks = p === undefined ? [] : keysOf(p);
    if (k && !ks.includes(k)) ks = [...ks, k];
    stackKeys.set(id, ks);
    return ks;
  };
  const inclusive = new Map();
  for (const [id, us] of self) for (const k of keysOf(id)) inclusive.set(k, (inclusive.get(k) ?? 0) + us);
  // Time per package (node_modules/<pkg>, or dist/<folder> for the project), given to the
  // innermost package frame on the stack: node internals and native calls (writev, hashing)
  // count towards the library or project code that called them.
  const pkgOf = (n) => {
    const url = shortUrl(n.callFrame.url);
    const m = /^node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url) ?? /^((?:dist|src)\/[^/]+)/.exec(url);
    return m ? m[1] : null;
  };
  const innermost = new Map();
  const pkgsOf = (id) => {
    if (innermost.has(id)) return innermost.get(id);
    const k = pkgOf(byId.get(id));
    const p = parent.get(id);
    const v = k ?? (p === undefined ? '(node internals, no package on stack)' : pkgsOf(p));
    innermost.set(id, v);
    return v;
  };
  const byPackage = new Map();
  for (const [id, us] of self) {
    const name = byId.get(id).callFrame.functionName;
    if (name === '(idle)') continue;
    const k = name === '(garbage collector)' || name === '(program)' ? name : pkgsOf(id);
    byPackage.set(k, (byPackage.get(k) ?? 0) + us);
  }
  const rank = (m) =>
    [...m.entries()]
      .filter(([k]) => !k.startsWith('(idle)'))
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, us]) => ({ what: k.trim(), ms: Math.round(us / 1000), pctOfBusy: Math.round((1000 * us) / busy) / 10 }));
  return {
    file,
    totalMs: Math.round(total / 1000),
    busyMs: Math.round(busy / 1000),
    idlePct: Math.round((1000 * special.idle) / total) / 10,
    gcPctOfBusy: Math.round((1000 * special.gc) / busy) / 10,
    programPctOfBusy: Math.round((1000 * special.program) / busy) / 10,
    topFunctions: rank(fn),
    topFiles: rank(files).slice(0, 15),
    topProjectInclusive: rank(inclusive).slice(0, 20),
    packagesInclusive: rank(byPackage).slice(0, 20),
  };
}

export function profileMarkdown(s) {
  const lines = [
    `Profile \`${path.basename(s.file)}\`: ${s.busyMs} ms busy of ${s.totalMs} ms (idle ${s.idlePct} %), GC ${s.gcPctOfBusy} % of busy, (program) ${s.programPctOfBusy} % of busy.`,
    '',
    '| self ms | % busy | function (file:line) |',
    '|---:|---:|---|',
    ...s.topFunctions.map((f) => `| ${f.ms} | ${f.pctOfBusy} | \`${f.what}\` |`),
    '',
    '| self ms | % busy | file |',
    '|---:|---:|---|',
    ...s.topFiles.map((f) => `| ${f.ms} | ${f.pctOfBusy} | \`${f.what}\` |`),
    '',
    '| inclusive ms | % busy | project function (dist/), callees included |',
    '|---:|---:|---|',
    ...s.topProjectInclusive.map((f) => `| ${f.ms} | ${f.pctOfBusy} | \`${f.what}\` |`),
    '',
    '| ms | % busy | innermost package or project folder on the stack (node internals and native calls count to their caller) |',
    '|---:|---:|---|',
    ...s.packagesInclusive.map((f) => `| ${f.ms} | ${f.pctOfBusy} | \`${f.what}\` |`),
  ];
  return lines.join('\n');
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  console.log(profileMarkdown(summariseProfile(process.argv[2], Number(process.argv[3] ?? 25))));
}
