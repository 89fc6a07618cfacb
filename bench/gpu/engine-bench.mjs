#!/usr/bin/env node
// GPU benchmark of the local engine (issue 3, CUDA): three modes, each printing markdown and
// writing JSON.
//
//   raw     one ORT session per graph variant, one session.run at a time (like the gpu-kit's
//           bench-ort.mjs): sequences/s at batch x length; then each variant's vectors for the
//           reference sequences of scripts/gpu/torch_ref.py against PyTorch fp32 (cosine distance).
//   engine  createOnnxEmbedder (tokenizer workers, micro-batcher, session worker) fed embed() calls
//           of K texts by C concurrent callers (closed loop) at several text lengths; and the
//           engine's vectors for the reference sequences (as token ids) against PyTorch fp32.
//   golden  the tiny-bert golden file through createOnnxEmbedder on --device: token ids exact,
//           every vector and Matryoshka dimension within 1e-5, one at a time and batched.
//
// From source: npx tsx bench/gpu/engine-bench.mjs MODE [options]; on the GPU machine as an
// esbuild bundle (scripts/gpu/bundle.sh), onnxruntime-node resolved beside the bundle.
// Options: --dir (`scripts/gpu/check.sh prep`'s output: graphs, ref-*.bin), --device cpu|cuda,
// --variants fp32,fp16-opt,..., --cases 1:16,32:128,..., --seconds S (per cell), --lengths
// 16,128,512, --cells 1x1,32x1,... (callers x texts per call), --variant (engine), --fixture (golden), --json FILE.
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import ort from 'onnxruntime-node';
import { deriveDimensions } from '../../src/core/dimensions.ts';
import { createOnnxEmbedder } from '../../src/backends/onnx/embedder.ts';
import { loadModelDir } from '../../src/backends/onnx/model-dir.ts';
import { TextTokenizer } from '../../src/backends/onnx/tokenize.ts';

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    dir: { type: 'string', default: '/tmp/ec-gpu' },
    device: { type: 'string', default: 'cuda' },
    variants: { type: 'string', default: 'fp32,fp32-opt,fp16-opt,fp16-mha' },
    variant: { type: 'string', default: 'fp16-opt' },
    cases: { type: 'string', default: '1:16,1:128,1:512,32:16,32:128,32:512,256:16,256:128,256:512' },
    seconds: { type: 'string', default: '1' },
    lengths: { type: 'string', default: '16,128,512' },
    cells: { type: 'string', default: '1x1,32x1,256x1,2048x1,64x32' },
    fixture: { type: 'string' },
    'tokenizer-threads': { type: 'string' },
    replicas: { type: 'string', default: '1' },
    input: { type: 'string', default: 'text' },
    'max-len': { type: 'string', default: '512' },
    json: { type: 'string' },
  },
});
const mode = positionals[0] ?? 'raw';
const seconds = Number(args.seconds);
const device = args.device;
/** The repo root: from source, two folders up; as a bundle, the working directory (the repo root on the GPU machine). */
const here = fileURLToPath(new URL('.', import.meta.url));
const root = existsSync(join(here, '../../test/fixtures')) ? join(here, '../..') : process.cwd();
const fixture = args.fixture ?? join(root, 'test/fixtures/tiny-bert');

const fmt = (n, d = 0) => (Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }).replace(/,/g, ' ') : String(n));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function writeJson(result) {
  if (args.json) writeFileSync(args.json, JSON.stringify(result, null, 1));
}

/** The reference sequences and PyTorch's vectors for them (torch_ref.py). */
function loadRef(dir) {
  const lengthsPath = join(dir, 'ref-lengths.bin');
  if (!existsSync(lengthsPath)) return null;
  const i32 = (f) => { const b = readFileSync(join(dir, f)); return new Int32Array(b.buffer, b.byteOffset, b.byteLength / 4); };
  const f32 = (f) => { const b = readFileSync(join(dir, f)); return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)); };
  const lengths = i32('ref-lengths.bin');
  const ids = i32('ref-ids.bin');
  const seqs = [];
  let off = 0;
  for (const L of lengths) { seqs.push(ids.subarray(off, off + L)); off += L; }
  const fp32 = f32('ref-fp32.bin');
  const fp16 = existsSync(join(dir, 'ref-fp16.bin')) ? f32('ref-fp16.bin') : null;
  const dim = fp32.length / lengths.length;
  const row = (a, i) => a.subarray(i * dim, (i + 1) * dim);
  return { seqs, dim, fp32: seqs.map((_, i) => row(fp32, i)), fp16: fp16 && seqs.map((_, i) => row(fp16, i)) };
}

/** 1 - cos(a, b), in float64. */
function cosDist(a, b) {
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; i++) { ab += a[i] * b[i]; aa += a[i] * a[i]; bb += b[i] * b[i]; }
  return 1 - ab / Math.sqrt(aa * bb);
}
function maxAbs(a, b) {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
function compare(vectors, refs) {
  let maxCos = 0, sumCos = 0, maxDiff = 0;
  vectors.forEach((v, i) => {
    const c = cosDist(v, refs[i]);
    maxCos = Math.max(maxCos, c); sumCos += c; maxDiff = Math.max(maxDiff, maxAbs(v, refs[i]));
  });
  return { n: vectors.length, maxCosDist: maxCos, meanCosDist: sumCos / vectors.length, maxAbsDiff: maxDiff };
}

async function createSession(path) {
  const t0 = performance.now();
  const session = await ort.InferenceSession.create(path, {
    executionProviders: [device === 'cuda' ? { name: 'cuda', deviceId: 0 } : 'cpu'],
    graphOptimizationLevel: 'all',
  });
  return { session, loadMs: performance.now() - t0 };
}

function feedsFor(session, b, L, fill) {
  const ids = new BigInt64Array(b * L);
  const mask = new BigInt64Array(b * L);
  fill(ids, mask);
  const all = { input_ids: ids, attention_mask: mask, token_type_ids: new BigInt64Array(b * L) };
  return Object.fromEntries(session.inputNames.map((n) => [n, new ort.Tensor('int64', all[n], [b, L])]));
}

/** Vectors for sequences through one session, in length-sorted right-padded batches of 64. */
async function runRef(session, seqs) {
  const out = new Array(seqs.length);
  const order = seqs.map((_, i) => i).sort((a, b) => seqs[a].length - seqs[b].length);
  const output = session.outputNames.includes('sentence_embedding') ? 'sentence_embedding' : session.outputNames[0];
  for (let s = 0; s < order.length; s += 64) {
    const idx = order.slice(s, s + 64);
    const L = Math.max(...idx.map((i) => seqs[i].length));
    const feeds = feedsFor(session, idx.length, L, (ids, mask) => {
      idx.forEach((i, r) => seqs[i].forEach((id, t) => { ids[r * L + t] = BigInt(id); mask[r * L + t] = 1n; }));
    });
    const res = (await session.run(feeds, [output]))[output];
    const dim = res.dims[res.dims.length - 1];
    if (res.dims.length !== 2) throw new Error(`${output} has dims [${res.dims}]; the benchmark expects a pooled graph`);
    idx.forEach((i, r) => { out[i] = Float32Array.from(res.data.subarray(r * dim, (r + 1) * dim)); });
  }
  return out;
}

async function raw() {
  const cases = args.cases.split(',').map((c) => c.split(':').map(Number));
  const variants = args.variants.split(',').filter((v) => existsSync(join(args.dir, `${v}.onnx`)));
  const ref = loadRef(args.dir);
  const result = { mode: 'raw', device, ort: ort.env.versions?.common ?? null, variants: {} };
  for (const variant of variants) {
    let session, loadMs;
    try {
      ({ session, loadMs } = await createSession(join(args.dir, `${variant}.onnx`)));
    } catch (err) {
      console.log(`raw ${variant}: cannot load: ${err.message}`);
      result.variants[variant] = { error: err.message };
      continue;
    }
    const entry = (result.variants[variant] = { loadMs, timings: [] });
    console.log(`raw ${variant}: loaded in ${fmt(loadMs)} ms; inputs ${session.inputNames}, outputs ${session.outputNames}`);
    for (const [b, L] of cases) {
      try {
        const feeds = feedsFor(session, b, L, (ids, mask) => {
          for (let i = 0; i < ids.length; i++) { ids[i] = BigInt(5 + Math.floor(Math.random() * 29995)); mask[i] = 1n; }
        });
        for (let i = 0; i < 2; i++) await session.run(feeds);
        let n = 0;
        const t0 = performance.now();
        while (n < 3 || performance.now() - t0 < seconds * 1000) { await session.run(feeds); n++; }
        const s = (performance.now() - t0) / 1000;
        const row = { batch: b, len: L, seq_s: (n * b) / s, ms_per_batch: (s * 1000) / n };
        entry.timings.push(row);
        console.log(`raw ${variant} batch ${b} len ${L}: ${fmt(row.seq_s)} seq/s, ${fmt(row.ms_per_batch, 2)} ms/batch`);
      } catch (err) {
        entry.timings.push({ batch: b, len: L, error: err.message });
        console.log(`raw ${variant} batch ${b} len ${L}: ${err.message}`);
      }
      writeJson(result);
    }
    if (ref) {
      try {
        const vectors = await runRef(session, ref.seqs);
        entry.vsTorchFp32 = compare(vectors, ref.fp32);
        if (variant === 'fp32') result.ortFp32Vectors = vectors;
        else if (result.ortFp32Vectors) entry.vsOrtFp32 = compare(vectors, result.ortFp32Vectors);
        console.log(`raw ${variant} vs torch fp32 over ${ref.seqs.length} sequences: ${JSON.stringify(entry.vsTorchFp32)}`);
      } catch (err) {
        entry.vsTorchFp32 = { error: err.message };
        console.log(`raw ${variant} reference check failed: ${err.message}`);
      }
    }
    await session.release();
    writeJson({ ...result, ortFp32Vectors: undefined });
  }
  delete result.ortFp32Vectors;
  if (ref?.fp16) result.torchFp16VsFp32 = compare(ref.fp16, ref.fp32);
  writeJson(result);
  // table
  const names = Object.keys(result.variants).filter((v) => result.variants[v].timings);
  console.log(`\n| batch × length | ${names.map((v) => `ort ${device} ${v}`).join(' | ')} |\n|---|${names.map(() => '---|').join('')}`);
  for (const [b, L] of cases) {
    const cells = names.map((v) => result.variants[v].timings.find((t) => t.batch === b && t.len === L)?.seq_s);
    console.log(`| ${b} × ${L} | ${cells.map((c) => fmt(c)).join(' | ')} |`);
  }
  console.log(`\n| variant | max cos dist vs torch fp32 | mean | max abs diff | vs ort fp32: max cos dist |\n|---|---|---|---|---|`);
  for (const v of names) {
    const c = result.variants[v].vsTorchFp32;
    if (c && !c.error) console.log(`| ${v} | ${c.maxCosDist.toExponential(2)} | ${c.meanCosDist.toExponential(2)} | ${c.maxAbsDiff.toExponential(2)} | ${result.variants[v].vsOrtFp32?.maxCosDist.toExponential(2) ?? '-'} |`);
  }
  if (result.torchFp16VsFp32) console.log(`| (torch fp16) | ${result.torchFp16VsFp32.maxCosDist.toExponential(2)} | ${result.torchFp16VsFp32.meanCosDist.toExponential(2)} | ${result.torchFp16VsFp32.maxAbsDiff.toExponential(2)} | - |`);
}

/** A model directory for the engine around one graph: the tiny-bert tokenizer (its ids are valid in the 30 528 vocabulary), limit --max-len. */
function modelDir(variant, graph, hidden) {
  const dir = join(args.dir, `engine-${variant}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'onnx'), { recursive: true });
  mkdirSync(join(dir, '1_Pooling'), { recursive: true });
  const maxLen = Number(args['max-len']);
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'bert', hidden_size: hidden, vocab_size: 30528, max_position_embeddings: 2048 }));
  const tc = JSON.parse(readFileSync(join(fixture, 'tokenizer_config.json'), 'utf8'));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ ...tc, model_max_length: maxLen }));
  writeFileSync(join(dir, 'sentence_bert_config.json'), JSON.stringify({ max_seq_length: maxLen, do_lower_case: false }));
  writeFileSync(join(dir, '1_Pooling/config.json'), JSON.stringify({ word_embedding_dimension: hidden, pooling_mode_mean_tokens: true }));
  copyFileSync(join(fixture, 'tokenizer.json'), join(dir, 'tokenizer.json'));
  symlinkSync(graph, join(dir, 'onnx/model.onnx'));
  return dir;
}

/** Texts that tokenise to exactly `tokens` ids (frame and task prefix included): one vocabulary word per token. */
function textsOfLength(tokenizer, tokens, count, prefixTokens, words) {
  const n = tokens - 2 - prefixTokens;
  const texts = [];
  let seed = tokens * 7919 + 1;
  for (let c = 0; c < count; c++) {
    const w = [];
    for (let i = 0; i < n; i++) { seed = (seed * 1103515245 + 12345) >>> 0; w.push(words[seed % words.length]); }
    texts.push(w.join(' '));
  }
  const got = tokenizer.encodeText(texts[0], 'search_document').length;
  if (got !== tokens) throw new Error(`text of ${n} words gives ${got} tokens, wanted ${tokens}`);
  return texts;
}

async function engine() {
  const variant = args.variant;
  const graph = join(args.dir, `${variant}.onnx`);
  const ref = loadRef(args.dir);
  const hidden = ref?.dim ?? 768;
  // R replicas: R model directories over the same graph, i.e. R session workers (R ORT sessions,
  // R CUDA streams) with R batchers; callers take them in turn
  const replicas = Number(args.replicas);
  const dirs = Array.from({ length: replicas }, (_, r) => modelDir(replicas > 1 ? `${variant}-r${r}` : variant, graph, hidden));
  const ids = dirs.map((d) => d.split('/').pop());
  const model = ids[0];
  let turn = 0;
  const pick = () => ids[turn++ % ids.length];
  const tokenizerThreads = args['tokenizer-threads'] ? Number(args['tokenizer-threads']) : undefined;
  const t0 = performance.now();
  const embedder = await createOnnxEmbedder({
    modelDirs: dirs, device, maxBatchSize: 256, maxBatchTokens: 256 * Number(args['max-len']), maxWaitMs: 2,
    maxQueue: 100_000, timeoutMs: 300_000, tokenizerThreads,
  });
  const input = args.input;
  const result = { mode: 'engine', device, variant, replicas, tokenizerThreads: tokenizerThreads ?? 'default', input, loadMs: performance.now() - t0, cells: [] };
  const label = `engine ${variant} (${input}, tokenizer threads ${result.tokenizerThreads}, ${replicas} session${replicas > 1 ? 's' : ''})`;
  console.log(`${label}: loaded in ${fmt(result.loadMs)} ms`);

  const md = await loadModelDir(dirs[0]);
  const tokenizer = new TextTokenizer({ tokenizerJson: md.tokenizerJson, tokenizerConfigJson: md.tokenizerConfigJson, maxTokens: md.maxTokens, vocabSize: md.vocabSize });
  const vocab = Object.keys(JSON.parse(md.tokenizerJson).model.vocab).filter((w) => /^[a-z]{3,}$/.test(w));
  const words = vocab.filter((w) => tokenizer.encodeText(w, null).length === 3);
  const prefixTokens = tokenizer.encodeText('', 'search_document').length - 2;

  // correctness through the engine: reference sequences as token ids, all submitted at once
  if (ref) {
    const res = await Promise.all(ref.seqs.map((s) => embedder.embed(model, [{ kind: 'tokens', ids: Array.from(s) }])));
    result.vsTorchFp32 = compare(res.map((r) => r.vectors[0]), ref.fp32);
    result.tokensMatch = res.every((r, i) => r.tokens[0] === ref.seqs[i].length);
    console.log(`engine ${variant} vs torch fp32 over ${ref.seqs.length} sequences: ${JSON.stringify(result.vsTorchFp32)}, token counts match: ${result.tokensMatch}`);
  }

  const lengths = args.lengths.split(',').map(Number);
  // a cell CxK: C callers in a closed loop, each embed() call carrying K texts
  const cells = args.cells.split(',').map((c) => c.split('x').map(Number));
  for (const L of lengths) {
    const texts = textsOfLength(tokenizer, L, 4096, prefixTokens, words);
    const inputs = input === 'tokens'
      ? texts.map((t) => ({ kind: 'tokens', ids: tokenizer.encodeText(t, 'search_document') }))
      : texts.map((text) => ({ kind: 'text', text }));
    const sum = (st, f) => ids.reduce((n, id) => n + st[id][f], 0);
    for (const [c, k] of cells) {
      let next = 0;
      const take = () => Array.from({ length: k }, () => inputs[next++ % inputs.length]);
      const run = async (ms) => {
        const before = embedder.stats();
        const elu0 = performance.eventLoopUtilization();
        const deadline = performance.now() + ms;
        let done = 0, tokens = 0;
        const start = performance.now();
        await Promise.all(Array.from({ length: c }, async () => {
          while (performance.now() < deadline) {
            const r = await embedder.embed(pick(), take());
            done += r.vectors.length;
            for (const t of r.tokens) tokens += t;
          }
        }));
        const s = (performance.now() - start) / 1000;
        const after = embedder.stats();
        const batches = sum(after, 'batches') - sum(before, 'batches');
        const elu = performance.eventLoopUtilization(elu0).utilization;
        return { done, s, tokens, batches, elu, meanBatch: (sum(after, 'embeddings') - sum(before, 'embeddings')) / Math.max(1, batches) };
      };
      try {
        await run(Math.max(300, seconds * 300));
        const m = await run(seconds * 1000);
        const cell = { len: L, callers: c, textsPerCall: k, seq_s: m.done / m.s, mean_batch: m.meanBatch, batches: m.batches,
          tokens_per_seq: m.tokens / m.done, event_loop_utilization: m.elu };
        result.cells.push(cell);
        console.log(`${label} len ${L} ${c} callers x ${k} texts: ${fmt(cell.seq_s)} seq/s, mean batch ${fmt(cell.mean_batch, 1)}, ` +
          `${fmt(cell.tokens_per_seq, 1)} tokens/seq, event loop ${fmt(100 * m.elu)}% busy`);
      } catch (err) {
        result.cells.push({ len: L, callers: c, textsPerCall: k, error: err.message });
        console.log(`engine ${variant} len ${L} ${c}x${k}: ${err.message}`);
      }
      writeJson(result);
    }
  }
  await embedder.close();
  writeJson(result);
  console.log(`\n${label}\n\n| length | ${cells.map(([c, k]) => `${c} callers × ${k} text${k > 1 ? 's' : ''}`).join(' | ')} |\n|---|${cells.map(() => '---|').join('')}`);
  for (const L of lengths) {
    const row = cells.map(([c, k]) => result.cells.find((x) => x.len === L && x.callers === c && x.textsPerCall === k));
    console.log(`| ${L} | ${row.map((x) => (x?.seq_s ? `${fmt(x.seq_s)} (batch ${fmt(x.mean_batch, 0)}, loop ${fmt(100 * x.event_loop_utilization)}%)` : 'error')).join(' | ')} |`);
  }
}

async function golden() {
  const g = JSON.parse(readFileSync(join(fixture, 'golden-public.json'), 'utf8'));
  const md = await loadModelDir(fixture);
  const tokenizer = new TextTokenizer({ tokenizerJson: md.tokenizerJson, tokenizerConfigJson: md.tokenizerConfigJson, maxTokens: md.maxTokens, vocabSize: md.vocabSize });
  const embedder = await createOnnxEmbedder({ modelDirs: [fixture], device, maxWaitMs: 5 });
  const model = md.id;
  const result = { mode: 'golden', device, cases: g.cases.length, idsExact: 0, maxEmbeddingDiff: 0, maxMatryoshkaDiff: 0, maxBatchedVsSingle: 0, maxTokenInputDiff: 0, failures: [] };
  const singles = [];
  for (const [i, c] of g.cases.entries()) {
    const ids = tokenizer.encode({ kind: 'text', text: c.text }, c.task_type);
    const exact = ids.length === c.input_ids.length && ids.every((id, k) => id === c.input_ids[k]);
    if (exact) result.idsExact++; else result.failures.push(`case ${i}: ids differ`);
    const { vectors, tokens } = await embedder.embed(model, [{ kind: 'text', text: c.text }], { taskType: c.task_type });
    if (tokens[0] !== c.input_ids.length) result.failures.push(`case ${i}: ${tokens[0]} tokens, golden ${c.input_ids.length}`);
    singles.push(vectors[0]);
    const d = maxAbs(vectors[0], c.embedding);
    result.maxEmbeddingDiff = Math.max(result.maxEmbeddingDiff, d);
    if (d >= 1e-5) result.failures.push(`case ${i}: embedding off by ${d}`);
    for (const [dims, expected] of Object.entries(c.matryoshka ?? {})) {
      const dm = maxAbs(deriveDimensions(vectors[0], Number(dims), 'layernorm-truncate'), expected);
      result.maxMatryoshkaDiff = Math.max(result.maxMatryoshkaDiff, dm);
      if (dm >= 1e-5) result.failures.push(`case ${i}: matryoshka ${dims} off by ${dm}`);
    }
    const viaIds = await embedder.embed(model, [{ kind: 'tokens', ids: c.input_ids }]);
    result.maxTokenInputDiff = Math.max(result.maxTokenInputDiff, maxAbs(viaIds.vectors[0], c.embedding));
  }
  // all cases at once: the batcher pads them together
  const batched = await Promise.all(g.cases.map((c) => embedder.embed(model, [{ kind: 'text', text: c.text }], { taskType: c.task_type })));
  batched.forEach((r, i) => {
    const d = maxAbs(r.vectors[0], g.cases[i].embedding);
    result.maxBatchedVsSingle = Math.max(result.maxBatchedVsSingle, maxAbs(r.vectors[0], singles[i]));
    result.maxEmbeddingDiff = Math.max(result.maxEmbeddingDiff, d);
    if (d >= 1e-5) result.failures.push(`case ${i} (batched): embedding off by ${d}`);
  });
  if (result.maxTokenInputDiff >= 1e-5) result.failures.push(`token-id inputs off by ${result.maxTokenInputDiff}`);
  result.batches = embedder.stats()[model];
  await embedder.close();
  result.pass = result.failures.length === 0;
  writeJson(result);
  console.log(`golden on ${device}: ${result.pass ? 'PASS' : 'FAIL'}: ${result.idsExact}/${result.cases} token id lists exact, ` +
    `max |embedding - golden| ${result.maxEmbeddingDiff.toExponential(2)} (single and batched), matryoshka ${result.maxMatryoshkaDiff.toExponential(2)}, ` +
    `token-id inputs ${result.maxTokenInputDiff.toExponential(2)}, batched vs single ${result.maxBatchedVsSingle.toExponential(2)}` +
    (result.pass ? '' : `\n  ${result.failures.join('\n  ')}`));
}

const modes = { raw, engine, golden };
if (!modes[mode]) {
  console.error(`unknown mode ${mode}: raw | engine | golden`);
  process.exit(2);
}
await modes[mode]();
await sleep(10);
process.exit(0);
