#!/usr/bin/env bash
# The GPU check of issue 3, in one call, after scripts/gpu/prep.sh has run in the background
# (started by the first kit call) and the kit is unpacked in $KIT/root:
#   1. wait for prep (export, `models optimize` variants, PyTorch reference);
#   2. raw ORT throughput of each graph variant + its vectors against PyTorch fp32;
#   3. the engine end to end (tokenizer workers, micro-batcher, session worker) on the fastest
#      fp16 variant, and its vectors against PyTorch fp32;
#   4. the tiny-bert golden test through the engine on CUDA.
# Results (JSON, logs, summary.md) go to $OUT. Every step has its own time limit and a failed
# step does not stop the next. Env: DEVICE (cuda), KIT (/tmp/gpukit), W (/tmp/ec-gpu),
# BUNDLE (.gpu-bundle), SECONDS_PER_CELL (1), PREP_WAIT (240), ENGINE_VARIANT (auto).
set -uo pipefail
DEVICE=${DEVICE:-cuda}
KIT=${KIT:-/tmp/gpukit}
W=${W:-/tmp/ec-gpu}
BUNDLE=${BUNDLE:-.gpu-bundle}
OUT=${OUT:-/tmp/ec-out}
SECS=${SECONDS_PER_CELL:-1}
mkdir -p "$OUT"
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/lib64:/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
NODE=$KIT/root/node
t0=$(date +%s)
stamp() { echo "[run +$(( $(date +%s) - t0 ))s] $*"; }
( nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader 2>&1 || true ) | tee "$OUT/gpu.txt"

# onnxruntime-node for the bundle: the kit's CUDA-enabled one, found beside the bundle (ESM ignores NODE_PATH)
mkdir -p "$BUNDLE/node_modules"
ln -sfn "$KIT/root/onnxruntime-node" "$BUNDLE/node_modules/onnxruntime-node"

stamp "waiting for prep"
for _ in $(seq "${PREP_WAIT:-240}"); do [ -f "$W/done" ] && break; sleep 1; done
[ -f "$W/done" ] || stamp "prep NOT done; going on with what is there"
cat "$W/prep.log" 2>/dev/null | tail -40
ls "$W"/FAILED-* 2>/dev/null && stamp "some prep steps failed (see logs)"
cp "$W/torch.json" "$OUT/" 2>/dev/null

# variants: drop opt level 2 when its graph is the same as level 0's
VARIANTS="fp32,fp32-opt,fp16-opt,fp16-mha"
if [ -f "$W/fp16-opt2.stats.json" ] && ! cmp -s <(grep -A40 '"ops"' "$W/fp16-opt.stats.json") <(grep -A40 '"ops"' "$W/fp16-opt2.stats.json"); then
  VARIANTS="$VARIANTS,fp16-opt2"
fi
stamp "raw session benchmark: $VARIANTS"
timeout "${RAW_LIMIT:-200}" "$NODE" "$BUNDLE/engine-bench.js" raw --dir "$W" --device "$DEVICE" --variants "$VARIANTS" \
  --seconds "$SECS" --json "$OUT/raw.json" ${RAW_ARGS:-} 2>&1 | tee "$W/raw.log"

# the engine runs the fp16 variant with the best 256 x 128 figure (or ENGINE_VARIANT)
EV=${ENGINE_VARIANT:-$("$NODE" -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).variants;
  let best = "fp16-opt", top = 0;
  for (const [v, e] of Object.entries(r)) if (v.startsWith("fp16")) for (const t of e.timings ?? [])
    if (t.batch === 256 && t.len === 128 && t.seq_s > top) { top = t.seq_s; best = v; }
  console.log(best);' "$OUT/raw.json" 2>/dev/null || echo fp16-opt)}
stamp "engine end to end on $EV"
timeout "${ENGINE_LIMIT:-150}" "$NODE" "$BUNDLE/engine-bench.js" engine --dir "$W" --device "$DEVICE" --variant "$EV" \
  --seconds "$SECS" --json "$OUT/engine.json" ${ENGINE_ARGS:-} 2>&1 | tee "$W/engine.log"

stamp "golden test through the engine on $DEVICE"
timeout "${GOLDEN_LIMIT:-60}" "$NODE" "$BUNDLE/engine-bench.js" golden --device "$DEVICE" --fixture "$PWD/test/fixtures/tiny-bert" \
  --json "$OUT/golden.json" 2>&1 | tee "$W/golden.log"

{
  echo "# GPU run $(date -u +%FT%TZ) on $(cat "$OUT/gpu.txt")"
  echo; echo '## prep'; echo '```'; grep -h -E '^(\[prep|optimize:|export_bert|torch)' "$W/prep.log" 2>/dev/null; echo '```'
  echo; echo '## raw'; sed -n '/^| batch/,$p' "$W/raw.log" 2>/dev/null
  echo; echo '## engine'; grep -E '^engine .* vs torch' "$W/engine.log" 2>/dev/null; sed -n '/^| length/,$p' "$W/engine.log" 2>/dev/null
  echo; echo '## golden'; grep -E '^golden' "$W/golden.log" 2>/dev/null
} > "$OUT/summary.md"
tar czf "$OUT/logs.tgz" -C "$W" $(cd "$W" && ls ./*.log ./*.stats.json FAILED-* 2>/dev/null) 2>/dev/null
stamp "done"
cat "$OUT/summary.md"
