#!/usr/bin/env bash
# Second GPU call of issue 3: why the engine trailed its own session in the first run. The first
# run's engine cells were bound by tokenisation (4 tokenizer threads, ~0.3 M tokens/s each), so:
# the fp16 graph alone again (the same-call baseline, with PyTorch from prep.sh), then the engine
# with 12 tokenizer threads, with two session workers (replicas) over the graph, and fed token ids
# (no WordPiece) to show the engine's ceiling. Env as device-run.sh; prep with
# PREP_VARIANTS=fp16-opt TORCH_EARLY=1 TORCH_ARGS="--cases ... --n 64".
set -uo pipefail
DEVICE=${DEVICE:-cuda} KIT=${KIT:-/tmp/gpukit} W=${W:-/tmp/ec-gpu} BUNDLE=${BUNDLE:-.gpu-bundle} OUT=${OUT:-/tmp/ec-out}
SECS=${SECONDS_PER_CELL:-1}
mkdir -p "$OUT"
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/lib64:/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
NODE=$KIT/root/node
t0=$(date +%s)
stamp() { echo "[run2 +$(( $(date +%s) - t0 ))s] $*"; }
( nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 || true ) | tee "$OUT/gpu.txt"
mkdir -p "$BUNDLE/node_modules" && ln -sfn "$KIT/root/onnxruntime-node" "$BUNDLE/node_modules/onnxruntime-node"
for _ in $(seq "${PREP_WAIT:-150}"); do [ -f "$W/done" ] && break; sleep 1; done
stamp "prep done: $([ -f "$W/done" ] && echo yes || echo NO)"
grep -h -E '^(\[prep|optimize:|export_bert|torch)' "$W/prep.log" "$W/torch.log" 2>/dev/null | sort -u
cp "$W/torch.json" "$OUT/" 2>/dev/null
V=${V:-fp16-opt}
timeout 60 "$NODE" "$BUNDLE/engine-bench.js" raw --dir "$W" --device "$DEVICE" --variants "$V" --cases 32:128,256:16,256:128,256:512 \
  --seconds "$SECS" --json "$OUT/raw2.json" 2>&1 | grep -E '^(raw|\|)' | tee "$W/raw2.log"
n=0
for cfg in "text 12 1" "text 12 2" "tokens 4 1" "tokens 4 2"; do
  set -- $cfg; n=$((n + 1))
  stamp "engine: input $1, tokenizer threads $2, sessions $3"
  timeout 45 "$NODE" "$BUNDLE/engine-bench.js" engine --dir "$W" --device "$DEVICE" --variant "$V" --input "$1" \
    --tokenizer-threads "$2" --replicas "$3" --cells "${CELLS:-256x1,2048x1,64x32}" --seconds "$SECS" \
    --json "$OUT/engine2-$n.json" 2>&1 | grep -E '^(engine|\||$)' | tee -a "$W/engine2.log"
done
{ echo "# run 2 on $(cat "$OUT/gpu.txt")"; grep -h '^torch ' "$W/torch.log"; cat "$W/raw2.log"; grep -E '^(engine .*\)$|\|)' "$W/engine2.log"; } > "$OUT/summary2.md"
stamp done
