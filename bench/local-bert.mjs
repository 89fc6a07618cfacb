#!/usr/bin/env node
// The local engine on a BERT-base-sized model (issue 14, item 6), each figure next to its
// reference measured in the same run:
//   1. cross-request batching: C concurrent single-text embed() calls over N texts of 10-300 words
//      vs raw onnxruntime-node on length-sorted batches of the same token ids (same threads);
//   2. the engine vs @huggingface/transformers (feature-extraction, mean pooling, normalised) on the
//      same model and texts, in batches of 32 as they come (what a straightforward service does):
//      the engine given the N texts as one request (what an ingestion sends), and as (1);
//   3. a 2048-text request (short texts, to keep the run bounded) with a deadline far shorter than
//      the request takes, on an engine of its own: it must complete (the deadline counts stalls,
//      not queueing);
//   4. the priority lane: single-text p99 while (3) runs vs on the idle engine.
//
//   flock /tmp/bench.lock nice -n -5 npx tsx bench/local-bert.mjs [options]     (from source)
//   npm run build && flock /tmp/bench.lock node bench/local-bert.mjs [options]  (the build)
//
// The model (random weights, 12 layers, 768 hidden, 12 heads, 3072 intermediate, the tiny-bert
// fixture's tokenizer) is generated into bench/.models/bert-base on first use with Debian's
// python3-torch + python3-onnx (scripts/model/make-bert-base.py).
//
// Options: --model DIR, --texts N (default 64), --concurrency C (16), --threads T (ORT intra-op,
// default: the machine's cores, for the engine and the references alike), --ref-batch 4,16 (raw
// reference batch sizes, the best per round counts), --rounds R (2), --bulk N (2048),
// --bulk-words MIN,MAX (4,10), --bulk-timeout-ms (10000), --probes N (idle probes, 30),
// --probe-words MIN,MAX (5,40), --max-batch-tokens / --interactive-tokens (engine settings under
// test; 0 turns the interactive bulk cap off), --padding SHARE,FREE or off (the engine's padding
// rule, see BatcherConfig.padding), --skip-transformers, --skip-bulk (parts 3 and 4), --json FILE.
import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import ort from 'onnxruntime-node';
import { rng, text } from './lib/texts.mjs';

const ROOT = new URL('..', import.meta.url).pathname;
const { values: args } = parseArgs({
  options: {
    model: { type: 'string', default: path.join(ROOT, 'bench', '.models', 'bert-base') },
    texts: { type: 'string', default: '64' },
    concurrency: { type: 'string', default: '16' },
    threads: { type: 'string', default: String(availableParallelism()) },
    'ref-batch': { type: 'string', default: '4,16' },
    'max-batch-tokens': { type: 'string' },
    'interactive-tokens': { type: 'string' },
    padding: { type: 'string' },
    bulk: { type: 'string', default: '2048' },
    'bulk-words': { type: 'string', default: '4,10' },
    rounds: { type: 'string', default: '2' },
    'probe-words': { type: 'string', default: '5,40' },
    'bulk-timeout-ms': { type: 'string', default: '10000' },
    probes: { type: 'string', default: '30' },
    'skip-transformers': { type: 'boolean', default: false },
    'skip-bulk': { type: 'boolean', default: false },
    json: { type: 'string' },
    child: { type: 'string' },
  },
});
const N = Number(args.texts);
const C = Number(args.concurrency);
const THREADS = Number(args.threads);
const REF_BATCHES = args['ref-batch'].split(',').map(Number);
// Engine settings under test (absent: the engine's defaults).
const engineOptions = {
  ...(args['max-batch-tokens'] ? { maxBatchTokens: Number(args['max-batch-tokens']) } : {}),
  ...(args['interactive-tokens'] ? { interactiveBulkTokens: Number(args['interactive-tokens']) } : {}),
  ...(args.padding === 'off' ? { padding: null } : args.padding ? { padding: { maxShare: Number(args.padding.split(',')[0]), freeTokens: Number(args.padding.split(',')[1]) } } : {}),
};
const BULK = Number(args.bulk);
const [BULK_MIN, BULK_MAX] = args['bulk-words'].split(',').map(Number);
const ROUNDS = Number(args.rounds);
const [PROBE_MIN, PROBE_MAX] = args['probe-words'].split(',').map(Number);
const BULK_TIMEOUT_MS = Number(args['bulk-timeout-ms']);
const PROBES = Number(args.probes);
const modelDir = path.resolve(args.model);
const log = (s) => console.error(`[local-bert ${new Date().toISOString().slice(11, 19)}] ${s}`);

// Under tsx the source is measured, else the build in dist/.
const underTsx = process.execArgv.some((a) => a.includes('tsx')) || !!process.env.TSX;
const mod = (p) => new URL(underTsx ? `src/${p}.ts` : `dist/${p}.js`, `file://${ROOT}`);
if (!existsSync(mod('backends/onnx/embedder'))) {
  console.error('dist/ is missing: run `npm run build` first, or run this script with `npx tsx`.');
  process.exit(1);
}
const { createOnnxEmbedder } = await import(mod('backends/onnx/embedder').href);
const { loadModelDir } = await import(mod('backends/onnx/model-dir').href);
const { TextTokenizer } = await import(mod('backends/onnx/tokenize').href);
const { padBatch } = await import(mod('backends/onnx/pooling').href);

if (!existsSync(path.join(modelDir, 'onnx', 'model.onnx'))) {
  log(`generating ${modelDir} (python3-torch, python3-onnx)`);
  execFileSync('/usr/bin/python3', [path.join(ROOT, 'scripts', 'model', 'make-bert-base.py'), modelDir], { stdio: 'inherit' });
}
const dir = await loadModelDir(modelDir);
const model = dir.id;
const tokenizer = new TextTokenizer({ tokenizerJson: dir.tokenizerJson, tokenizerConfigJson: dir.tokenizerConfigJson, maxTokens: dir.maxTokens, vocabSize: dir.vocabSize, prompts: dir.prompts });

/** `count` texts of `min`..`max` words, seeded (same arguments, same texts), from texts.mjs's vocabulary. */
function texts(seed, count, min, max) {
  const r = rng(seed);
  let k = 0;
  return Array.from({ length: count }, (_, i) => {
    const n = min + Math.floor(r() * (max - min + 1));
    const words = [`t${seed}-${i}`];
    while (words.length < n) words.push(...text(`w${seed}`, k++).split(' ').slice(2)); // drop text()'s "family i:" head
    return words.slice(0, n).join(' ');
  });
}
const percentile = (sorted, p) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const corpus = texts(1, N, 10, 300);
const ids = corpus.map((t) => tokenizer.encodeText(t, null));
const lengths = ids.map((s) => s.length).sort((a, b) => a - b);
const tokenStats = { min: lengths[0], p50: percentile(lengths, 50), max: lengths.at(-1), mean: lengths.reduce((a, b) => a + b, 0) / N, truncated: lengths.filter((l) => l >= dir.maxTokens).length };
log(`${N} texts of 10-300 words: ${tokenStats.min}..${tokenStats.max} tokens (p50 ${tokenStats.p50}, ${tokenStats.truncated} cut at ${dir.maxTokens}); ORT threads ${THREADS}; uptime load ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
const loadAtStart = loadavg();

// 1a. Raw onnxruntime-node: the same ids, sorted by length, in batches of each size asked for, on
// a child process's main thread; the best size is the reference.
async function rawOrt() {
  const session = await ort.InferenceSession.create(dir.onnxPath, { executionProviders: ['cpu'], graphOptimizationLevel: 'all', intraOpNumThreads: THREADS, interOpNumThreads: 1 });
  const run = async (seqs) => {
    const p = padBatch(seqs);
    const feeds = {};
    for (const name of session.inputNames) {
      const data = name === 'input_ids' ? p.inputIds : name === 'attention_mask' ? p.attentionMask : p.tokenTypeIds;
      feeds[name] = new ort.Tensor('int64', data, [p.batch, p.seq]);
    }
    const out = await session.run(feeds);
    for (const t of Object.values(out)) t.dispose();
  };
  await run(ids.slice(0, 4)); // warm-up
  const sorted = [...ids].sort((a, b) => a.length - b.length);
  return {
    async pass() {
      const bySize = [];
      for (const size of REF_BATCHES) {
        const t0 = performance.now();
        for (let i = 0; i < sorted.length; i += size) await run(sorted.slice(i, i + size));
        const seconds = (performance.now() - t0) / 1000;
        bySize.push({ batch: size, perSecond: N / seconds, seconds });
        log(`  raw, batches of ${size}: ${(N / seconds).toFixed(2)}/s`);
      }
      return { ...bySize.reduce((a, b) => (b.perSecond > a.perSecond ? b : a)), bySize };
    },
    close: () => session.release(),
  };
}

// 2a. @huggingface/transformers on the same model directory and texts, batches of 32 in arrival order.
async function transformersJs() {
  const { env, pipeline } = await import('@huggingface/transformers');
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = path.dirname(modelDir) + path.sep;
  const extractor = await pipeline('feature-extraction', model, { dtype: 'fp32', device: 'cpu', session_options: { intraOpNumThreads: THREADS, interOpNumThreads: 1 } });
  await extractor(corpus.slice(0, 4), { pooling: 'mean', normalize: true });
  const t0 = performance.now();
  for (let i = 0; i < N; i += 32) await extractor(corpus.slice(i, i + 32), { pooling: 'mean', normalize: true });
  const seconds = (performance.now() - t0) / 1000;
  await extractor.dispose();
  return { perSecond: N / seconds, seconds };
}

/** C workers each embedding the next unsent text, one text per call. */
async function concurrentSingles(embedder) {
  let next = 0;
  const before = embedder.stats()[model];
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: C }, async () => {
      while (next < N) await embedder.embed(model, [{ kind: 'text', text: corpus[next++] }]);
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const after = embedder.stats()[model];
  return { perSecond: N / seconds, seconds, meanBatch: N / (after.batches - before.batches) };
}

/** The N texts as one request, as an ingestion sends them. */
async function oneRequest(embedder) {
  const before = embedder.stats()[model];
  const t0 = performance.now();
  await embedder.embed(model, corpus.map((text) => ({ kind: 'text', text })));
  const seconds = (performance.now() - t0) / 1000;
  const after = embedder.stats()[model];
  return { perSecond: N / seconds, seconds, meanBatch: N / (after.batches - before.batches) };
}

/** Sequential single-text requests (the probe set) until `until()` says stop or `count` are done. */
async function probe(embedder, count, until = () => false) {
  const probeTexts = texts(2, 64, PROBE_MIN, PROBE_MAX);
  const r = rng(3);
  const latencies = [];
  const failures = [];
  for (let i = 0; (count === 0 || i < count) && !(count === 0 && until()); i++) {
    const t0 = performance.now();
    try {
      await embedder.embed(model, [{ kind: 'text', text: probeTexts[i % probeTexts.length] }]);
    } catch (err) {
      failures.push(`${err.kind ?? ''} ${err.message}`.trim()); // counted (and its time kept): a failed probe is the worst latency
    }
    latencies.push(performance.now() - t0);
    // Land at random points of the bulk batches, leaving the ingestion room to progress.
    if (count === 0) await sleep(Math.floor(r() * 500));
  }
  latencies.sort((a, b) => a - b);
  return { n: latencies.length, failed: failures.length, firstFailure: failures[0], p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: latencies.at(-1) };
}

// The references run in child processes of their own: a BERT-base session (raw or
// transformers.js) in this process next to the engine's session worker ended the run twice with a
// native 'terminate called after throwing an instance of Napi::Error' (not seen with the engine
// alone, nor with the tiny fixture).
if (args.child === 'transformers' || args.child === 'raw') {
  const out = args.child === 'transformers' ? await transformersJs() : await (await rawOrt()).pass();
  process.stdout.write(JSON.stringify(out));
  process.exit(0);
}

class SkipBulk extends Error {}
const results = { model, modelDir, threads: THREADS, texts: N, concurrency: C, tokenStats, cpu: cpus()[0]?.model, cores: availableParallelism() };
/** Runs this script as `--child kind` (same options) and returns what it prints. */
function child(kind) {
  const out = execFileSync(process.execPath, [...process.execArgv, new URL(import.meta.url).pathname, ...process.argv.slice(2), '--child', kind], { stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 20 });
  return JSON.parse(out.toString());
}

// The batching rounds use the engine's default deadline (60 s without progress: one 8 x 512
// batch takes ~20 s on 2 busy cores); the 2048-text part gets an engine of its own with the short one.
const start = (timeoutMs) => createOnnxEmbedder({ modelDirs: [modelDir], device: 'cpu', threads: THREADS, ...(timeoutMs ? { timeoutMs } : {}), ...engineOptions });
results.engineOptions = engineOptions;
let embedder = await start();
try {
  await Promise.all(ids.slice(0, 4).map((_, i) => embedder.embed(model, [{ kind: 'text', text: corpus[i] }]))); // warm-up
  // Alternated rounds (raw, engine; transformers.js once, between), so load from elsewhere on the
  // machine falls on both sides; each round's ratio is engine / that round's raw figure.
  results.rounds = [];
  for (let round = 0; round < ROUNDS; round++) {
    log(`round ${round + 1}/${ROUNDS}: raw onnxruntime-node, length-sorted batches of ${REF_BATCHES.join(', ')}`);
    const r = { raw: child('raw') };
    log(`round ${round + 1}/${ROUNDS}: engine, ${C} concurrent single-text requests`);
    r.engine = await concurrentSingles(embedder);
    log(`  engine: ${r.engine.perSecond.toFixed(2)}/s (mean batch ${r.engine.meanBatch.toFixed(1)})`);
    log(`round ${round + 1}/${ROUNDS}: engine, one ${N}-text request`);
    r.engineBulk = await oneRequest(embedder);
    log(`  engine: ${r.engineBulk.perSecond.toFixed(2)}/s (mean batch ${r.engineBulk.meanBatch.toFixed(1)})`);
    results.rounds.push(r);
    if (round === Math.floor((ROUNDS - 1) / 2) && !args['skip-transformers']) {
      log('@huggingface/transformers, batches of 32 (child process)');
      results.transformers = child('transformers');
    }
  }
  await embedder.close();
  if (args['skip-bulk']) throw new SkipBulk();
  embedder = await start(BULK_TIMEOUT_MS);
  await embedder.embed(model, [{ kind: 'text', text: corpus[0] }]); // warm-up
  log(`engine: ${PROBES} single-text probes on the idle engine`);
  results.idle = await probe(embedder, PROBES);
  log(`engine: one ${BULK}-text request (${BULK_MIN}-${BULK_MAX} words each, deadline ${BULK_TIMEOUT_MS} ms) with probes alongside`);
  const bulkTexts = texts(4, BULK, BULK_MIN, BULK_MAX).map((text) => ({ kind: 'text', text }));
  const t0 = performance.now();
  let bulkDone = false;
  const bulk = embedder.embed(model, bulkTexts).then(
    (r) => ({ ok: true, vectors: r.vectors.length, seconds: (performance.now() - t0) / 1000 }),
    (err) => ({ ok: false, error: `${err.kind ?? ''} ${err.message}`, seconds: (performance.now() - t0) / 1000 }),
  ).finally(() => (bulkDone = true));
  await sleep(200); // the bulk request is queued and running
  results.busy = await probe(embedder, 0, () => bulkDone);
  results.bulk = await bulk;
  results.engineStats = embedder.stats()[model];
} catch (err) {
  if (!(err instanceof SkipBulk)) throw err;
} finally {
  await embedder.close();
}
results.loadavg = { start: loadAtStart, end: loadavg() };

const f = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '-');
const ratio = (a, b) => (b > 0 ? a / b : NaN);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
const batching = median(results.rounds.map((r) => ratio(r.engine.perSecond, r.raw.perSecond)));
results.engine = { perSecond: median(results.rounds.map((r) => r.engine.perSecond)), meanBatch: median(results.rounds.map((r) => r.engine.meanBatch)) };
results.raw = { perSecond: median(results.rounds.map((r) => r.raw.perSecond)) };
results.engineBulk = { perSecond: median(results.rounds.map((r) => r.engineBulk.perSecond)), meanBatch: median(results.rounds.map((r) => r.engineBulk.meanBatch)) };
const vsTransformers = results.transformers ? ratio(results.engine.perSecond, results.transformers.perSecond) : NaN;
const bulkVsTransformers = results.transformers ? ratio(results.engineBulk.perSecond, results.transformers.perSecond) : NaN;
const roundsText = results.rounds.map((r) => `${f(r.engine.perSecond, 2)} / ${f(r.raw.perSecond, 2)} (batch ${r.raw.batch})`).join('; ');
const lane = results.busy ? ratio(results.busy.p99, results.idle.p99) : NaN;
const met = (ok) => (ok ? 'met' : 'MISSED');
console.log(`
### Local engine on a BERT-base-sized model (${model}: 12 layers, 768 hidden, random weights), CPU

${results.cpu} × ${results.cores}, ORT intra-op threads ${THREADS}, engine options ${JSON.stringify(engineOptions)} (defaults otherwise); ${N} texts of 10-300 words = ${tokenStats.min}..${tokenStats.max} tokens (mean ${f(tokenStats.mean)}, ${tokenStats.truncated} cut at ${dir.maxTokens}); load average ${results.loadavg.start.map((l) => l.toFixed(2)).join(' ')} at start, ${results.loadavg.end.map((l) => l.toFixed(2)).join(' ')} at end.

| what | figure | reference (same run) | ratio | target |
|---|---:|---:|---:|---|
| cross-request batching: ${C} concurrent single-text requests, embeddings/s (median of ${ROUNDS} rounds) | ${f(results.engine.perSecond, 2)} (mean batch ${f(results.engine.meanBatch)}) | raw onnxruntime-node, length-sorted batches, best size of ${REF_BATCHES.join(', ')} per round: ${f(results.raw.perSecond, 2)} | ${f(batching, 2)}x (median of per-round ratios) | >= 0.8x: ${met(batching >= 0.8)} |
| the engine given the ${N} texts as one request, embeddings/s (median of ${ROUNDS} rounds) | ${f(results.engineBulk.perSecond, 2)} (mean batch ${f(results.engineBulk.meanBatch)}) | @huggingface/transformers, batches of 32 in arrival order: ${results.transformers ? f(results.transformers.perSecond, 2) : 'skipped'} | ${f(bulkVsTransformers, 2)}x | >= 1.5x: ${met(bulkVsTransformers >= 1.5)} |
| ${C} concurrent single-text requests (the first row) vs the same | ${f(results.engine.perSecond, 2)} | ${results.transformers ? f(results.transformers.perSecond, 2) : 'skipped'} | ${f(vsTransformers, 2)}x | — |
${results.bulk ? `| one ${BULK}-text request (${BULK_MIN}-${BULK_MAX} words each), deadline ${BULK_TIMEOUT_MS} ms without progress | ${results.bulk.ok ? `completed in ${f(results.bulk.seconds)} s (${f(BULK / results.bulk.seconds)} emb/s)` : `FAILED after ${f(results.bulk.seconds)} s: ${results.bulk.error}`} | — | — | completes: ${met(results.bulk.ok)} |
| priority lane: single-text (${PROBE_MIN}-${PROBE_MAX} words) p99 ms while it runs (${results.busy.n} probes, ${results.busy.failed} failed${results.busy.failed ? `: ${results.busy.firstFailure}` : ''}; p50 ${f(results.busy.p50)}, max ${f(results.busy.max)}) | ${f(results.busy.p99)} | idle engine (${results.idle.n} probes; p50 ${f(results.idle.p50)}): ${f(results.idle.p99)} | ${f(lane, 2)}x | <= 3x, none failed: ${met(lane <= 3 && results.busy.failed === 0)} |` : '| parts 3 and 4 | skipped (--skip-bulk) | | | |'}

Rounds, engine / raw embeddings/s: ${roundsText}.
`);
if (args.json) writeFileSync(args.json, JSON.stringify(results, null, 2));
