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
  ];
  return lines.join('\n');
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  console.log(profileMarkdown(summariseProfile(process.argv[2], Number(process.argv[3] ?? 25))));
}
