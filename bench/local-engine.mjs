#!/usr/bin/env node
// The local embedding engine alone (no HTTP, no cache): embeddings/s and latency of single-text
// embed() calls at several concurrencies, with micro-batching on and off (maxBatchSize 1), plus
// the worst event-loop delay seen meanwhile (the engine must not block it).
//
//   npm run build && node bench/local-engine.mjs [--model DIR] [--seconds S] [--device cpu|cuda]
//   npx tsx bench/local-engine.mjs ...          (from source, no build)
//
// Options: --model (default: the tiny-bert test fixture), --seconds per cell (default 5),
// --concurrency 1,8,64, --threads N (ORT intra-op), --wait-ms (batcher's maxWaitMs, default 2),
// --device, --json FILE (raw results).
import { existsSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

const root = new URL('..', import.meta.url);
const { values: args } = parseArgs({
  options: {
    model: { type: 'string', default: new URL('test/fixtures/tiny-bert', root).pathname },
    seconds: { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '1,8,64' },
    threads: { type: 'string' },
    'wait-ms': { type: 'string', default: '2' },
    device: { type: 'string', default: 'cpu' },
    json: { type: 'string' },
  },
});

// Under tsx (npx tsx bench/local-engine.mjs) the source is measured, else the build in dist/.
const underTsx = process.execArgv.some((a) => a.includes('tsx'));
const entry = new URL(underTsx ? 'src/backends/onnx/embedder.ts' : 'dist/backends/onnx/embedder.js', root);
if (!existsSync(entry)) {
  console.error('dist/ is missing: run `npm run build` first, or run this script with `npx tsx`.');
  process.exit(1);
}
const { createOnnxEmbedder } = await import(entry.href);

const WORDS = ('the quick brown fox jumps over lazy dog embedding cache model vector search query document ' +
  'cluster classify token batch queue latency throughput tenant postgres redis worker thread padding').split(' ');
let counter = 0;
/** A fresh text of 5 to 60 words each call, so lengths vary as in real traffic. */
function nextText() {
  const n = 5 + ((counter * 7919) % 56);
  const words = [];
  for (let i = 0; i < n; i++) words.push(WORDS[(counter * 31 + i * 17) % WORDS.length]);
  return `${words.join(' ')} #${counter++}`;
}

function percentile(sorted, p) {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function cell(embedder, model, concurrency, seconds) {
  const latencies = [];
  const loop = monitorEventLoopDelay({ resolution: 1 });
  const before = embedder.stats()[model];
  const deadline = performance.now() + seconds * 1000;
  loop.enable();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        const start = performance.now();
        await embedder.embed(model, [{ kind: 'text', text: nextText() }]);
        latencies.push(performance.now() - start);
      }
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  loop.disable();
  const after = embedder.stats()[model];
  latencies.sort((a, b) => a - b);
  const batches = after.batches - before.batches;
  return {
    concurrency,
    requests: latencies.length,
    perSecond: latencies.length / elapsed,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    meanBatch: batches > 0 ? (after.embeddings - before.embeddings) / batches : 0,
    loopMaxMs: loop.max / 1e6,
  };
}

const modelDir = args.model;
const model = modelDir.replace(/\/+$/, '').split('/').pop();
const concurrencies = args.concurrency.split(',').map(Number);
const seconds = Number(args.seconds);
const threads = args.threads ? Number(args.threads) : undefined;
const modes = [
  { name: `batching on (maxWaitMs ${args['wait-ms']})`, options: { maxWaitMs: Number(args['wait-ms']) } },
  { name: 'batching off (maxBatchSize 1)', options: { maxBatchSize: 1 } },
];

const results = [];
for (const mode of modes) {
  const embedder = await createOnnxEmbedder({ modelDirs: [modelDir], device: args.device, threads, ...mode.options });
  try {
    // Warm-up: first runs pay for allocations and JIT.
    await Promise.all(Array.from({ length: 32 }, () => embedder.embed(model, [{ kind: 'text', text: nextText() }])));
    for (const c of concurrencies) {
      const r = await cell(embedder, model, c, seconds);
      results.push({ mode: mode.name, ...r });
      console.error(`${mode.name}, concurrency ${c}: ${r.perSecond.toFixed(0)}/s`);
    }
  } finally {
    await embedder.close();
  }
}

const cpu = cpus()[0]?.model ?? 'unknown CPU';
console.log(`\n### Local engine: ${model} on ${args.device} (${cpu}, ${availableParallelism()} threads), ${seconds} s per cell\n`);
console.log('| mode | concurrency | embeddings/s | p50 ms | p99 ms | mean batch | event-loop max delay ms |');
console.log('|---|---|---|---|---|---|---|');
for (const r of results) {
  console.log(
    `| ${r.mode} | ${r.concurrency} | ${r.perSecond.toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.meanBatch.toFixed(1)} | ${r.loopMaxMs.toFixed(1)} |`,
  );
}
if (args.json) writeFileSync(args.json, JSON.stringify({ model, device: args.device, cpu, seconds, results }, null, 2));
