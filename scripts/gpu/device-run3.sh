#!/usr/bin/env bash
# Third GPU call of issue 3: which attention kernel the fused graphs get on Hopper, and whether
# another one (the raw 2D mask instead of per-row lengths, MultiHeadAttention instead of
# Attention, cuDNN flash attention, TRT fused attention off) beats PyTorch's sdpa; then the engine
# (token-id inputs, two session workers) on the fastest. Prep with
# PREP_VARIANTS="fp16-opt fp16-mha fp16-mask2d fp16-mha-mask2d" TORCH_EARLY=1.
set -uo pipefail
DEVICE=${DEVICE:-cuda} KIT=${KIT:-/tmp/gpukit} W=${W:-/tmp/ec-gpu} BUNDLE=${BUNDLE:-.gpu-bundle} OUT=${OUT:-/tmp/ec-out}
SECS=${SECONDS_PER_CELL:-1}
CASES=${CASES:-32:128,256:128,256:512}
mkdir -p "$OUT" "$W/r3"
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/lib64:/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
NODE=$KIT/root/node
B="$BUNDLE/engine-bench.js"
t0=$(date +%s)
stamp() { echo "[run3 +$(( $(date +%s) - t0 ))s] $*"; }
( nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 || true ) | tee "$OUT/gpu.txt"
mkdir -p "$BUNDLE/node_modules" && ln -sfn "$KIT/root/onnxruntime-node" "$BUNDLE/node_modules/onnxruntime-node"
for _ in $(seq "${PREP_WAIT:-150}"); do [ -f "$W/done" ] && break; sleep 1; done
stamp "prep done: $([ -f "$W/done" ] && echo yes || echo NO)"
grep -h -E '^(optimize: bert|torch )' "$W/prep.log" "$W/torch.log" 2>/dev/null | sort -u
cp "$W/torch.json" "$OUT/" 2>/dev/null
VARIANTS=$(cd "$W" && ls fp16*.onnx | sed 's/\.onnx$//' | tr '\n' ' ')

stamp "kernel choice (ORT_ENABLE_ATTENTION_KERNEL_DEBUG_INFO=1, one 256 x 128 batch)"
for v in $VARIANTS; do
  for e in "" ORT_ENABLE_CUDNN_FLASH_ATTENTION=1; do
    echo "$v ${e:-default}: $(env ORT_ENABLE_ATTENTION_KERNEL_DEBUG_INFO=1 $e timeout 20 "$NODE" "$B" raw --dir "$W" --device "$DEVICE" --variants "$v" \
      --cases 256:128 --seconds 0 2>&1 | grep -o 'SdpaKernel=[A-Z_]*' | sort | uniq -c | tr '\n' ' ')"
  done
done | tee "$W/kernels.log"

n=0
for spec in "fp16-opt" "fp16-opt ORT_DISABLE_FUSED_ATTENTION=1" "fp16-opt ORT_ENABLE_CUDNN_FLASH_ATTENTION=1" \
            "fp16-mha" "fp16-mha ORT_ENABLE_CUDNN_FLASH_ATTENTION=1" "fp16-mask2d" "fp16-mha-mask2d" "fp16-mha-mask2d ORT_ENABLE_CUDNN_FLASH_ATTENTION=1"; do
  set -- $spec; n=$((n + 1))
  [ -f "$W/$1.onnx" ] || continue
  env ${2:-} timeout 40 "$NODE" "$B" raw --dir "$W" --device "$DEVICE" --variants "$1" --cases "$CASES" --seconds "$SECS" \
    --json "$W/r3/$n.json" 2>&1 | grep -E '^raw .*(seq/s|torch fp32)' | sed "s/^raw /raw [${2:-default}] /" | tee -a "$W/raw3.log"
  echo "$spec" > "$W/r3/$n.spec"
done

# the fastest (variant, env) at 256 x 128 + 256 x 512
BEST=$(python3 - "$W/r3" <<'PY'
import json, sys, glob, os
best, top = "fp16-opt", 0
for f in glob.glob(os.path.join(sys.argv[1], "*.json")):
    spec = open(f[:-5] + ".spec").read().strip()
    r = json.load(open(f))
    for v, e in r["variants"].items():
        s = sum(t.get("seq_s", 0) / (17000 if t["len"] == 128 else 4100) for t in e.get("timings", []) if t["batch"] == 256)
        if s > top: top, best = s, spec
print(best)
PY
)
stamp "engine (token ids, 2 sessions) on: $BEST"
set -- $BEST
env ${2:-} timeout 45 "$NODE" "$B" engine --dir "$W" --device "$DEVICE" --variant "$1" --input tokens --replicas 2 \
  --cells 2048x1,64x32 --lengths 128,512 --seconds "$SECS" --json "$W/r3/engine.json" 2>&1 | grep -E '^(engine|\||$)' | tee "$W/engine3.log"
python3 - "$W/r3" "$OUT/run3.json" <<'PY'
import json, sys, glob, os
out = {}
for f in sorted(glob.glob(os.path.join(sys.argv[1], "*.json"))):
    spec = open(f[:-5] + ".spec").read().strip() if os.path.exists(f[:-5] + ".spec") else os.path.basename(f)
    out[spec] = json.load(open(f))
json.dump(out, open(sys.argv[2], "w"), indent=1)
PY
cat "$W/kernels.log" "$W/raw3.log" "$W/engine3.log" > "$OUT/summary3.md"
stamp done
