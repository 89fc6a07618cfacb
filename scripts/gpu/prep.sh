#!/usr/bin/env bash
# On the GPU machine, in the background while the kit's parts are still arriving: export the
# random-weight nomic-sized BERT (legacy TorchScript exporter), make the graph variants that the
# benchmark compares (`models optimize` with different options), then the PyTorch reference
# (timings + reference vectors). Writes everything under $W (default /tmp/ec-gpu); touches
# $W/done at the end (and $W/FAILED-<step> for a step that failed). Usage: setsid bash prep.sh &
set -uo pipefail
W=${W:-/tmp/ec-gpu}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$W/scripts" && cp "$HERE"/*.py "$W/scripts/"
cd "$W"
export PYTHONUNBUFFERED=1
PY=${PY:-python3}
EXTRA=${EXTRA:-}            # e.g. --tiny for a dry run on a CPU
HEADS=${HEADS:-12} HIDDEN=${HIDDEN:-768}
t0=$(date +%s)
stamp() { echo "[prep +$(( $(date +%s) - t0 ))s] $*"; }

stamp "python: $($PY -c 'import torch, transformers, onnx, onnxruntime as o; print(torch.__version__, transformers.__version__, onnx.__version__, o.__version__, o.get_available_providers())' 2>&1 | tail -1)"
$PY scripts/export_bert.py bert.onnx --arch classic $EXTRA > export.log 2>&1 || { touch FAILED-export; stamp "export failed"; tail -20 export.log; }
grep export_bert export.log
stamp "exported"

opt() {  # name, args...
  local name=$1; shift
  $PY scripts/optimize.py bert.onnx "$name.onnx" --heads "$HEADS" --hidden "$HIDDEN" --stats "$name.stats.json" "$@" > "$name.log" 2>&1 \
    || { touch "FAILED-$name"; echo "optimize $name failed:"; tail -20 "$name.log"; }
}
VARIANTS=${PREP_VARIANTS:-fp32 fp32-opt fp16-opt fp16-opt2 fp16-mha}
declare -A ARGS=(
  [fp32]="--no-fuse"                           # pooling head only: ORT's own runtime fusions
  [fp32-opt]="--use-gpu"                       # fused, fp32
  [fp16-opt]="--use-gpu --fp16"                # fused, fp16 (Attention op)
  [fp16-opt2]="--use-gpu --fp16 --opt-level 2"
  [fp16-mha]="--use-gpu --fp16 --mha"          # fused, fp16, MultiHeadAttention op
  [fp16-mask2d]="--use-gpu --fp16 --mask-format 2d"        # Attention fed the raw 2D mask
  [fp16-mha-mask2d]="--use-gpu --fp16 --mha --mask-format 2d"
)
if [ -n "${TORCH_EARLY:-}" ]; then   # the PyTorch reference alongside the (CPU-only) optimiser runs
  ( $PY scripts/torch_ref.py "$W" $EXTRA ${TORCH_ARGS:-} > torch.log 2>&1 || touch FAILED-torch ) &
  TORCH_PID=$!
fi
if [ -f bert.onnx ]; then
  pids=()
  for v in $VARIANTS; do opt "$v" ${ARGS[$v]} & pids+=($!); done
  wait "${pids[@]}"
  for v in $VARIANTS; do grep -h "^optimize:" "$v.log"; done
  ls -la ./*.onnx
fi
stamp "optimised"

if [ -n "${TORCH_PID:-}" ]; then wait "$TORCH_PID"; else
  $PY scripts/torch_ref.py "$W" $EXTRA ${TORCH_ARGS:-} > torch.log 2>&1 || { touch FAILED-torch; stamp "torch_ref failed"; tail -20 torch.log; }
fi
grep -E "^torch" torch.log
stamp "torch reference done"
touch done
