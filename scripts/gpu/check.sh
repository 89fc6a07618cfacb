#!/usr/bin/env bash
# The GPU check of the local engine: one script for every device run (it replaces the three
# one-off device-run*.sh of issue 3; scripts/gpu/README.md says how a run goes end to end).
# Settings are environment variables, given either in the environment or as NAME=value arguments.
set -uo pipefail

usage() {
  cat <<'EOF'
Usage: bash scripts/gpu/check.sh [--preset NAME] [NAME=value ...] [STEP ...]

Steps (run in the order given; default: the preset's, else raw engine golden). A failed step does
not stop the next one; each has its own time limit.
  prep      export the nomic-sized random BERT (export_bert.py), make the graph variants
            (scripts/model/optimize.py, i.e. `models optimize`), run the PyTorch reference
            (torch_ref.py: timings + vectors). CPU-heavy; writes $W, touches $W/done.
  prep-bg   prep, detached (setsid), log in $W/prep.log: start it in the first kit call, so it
            runs while the other parts arrive.
  kernels   which attention kernel each fp16 graph gets (ORT_ENABLE_ATTENTION_KERNEL_DEBUG_INFO=1)
  raw       one ORT session per graph: sequences/s per batch x length, vectors vs PyTorch fp32
  engine    the engine end to end (createOnnxEmbedder: tokenizer workers, batcher, sessions)
  golden    the tiny-bert golden test through the engine on $DEVICE
kernels, raw and engine wait for prep's $W/done first.

Presets (the three runs of 2026-11-26, bench/gpu/results/2026-11-26-h200-run{1,2,3}):
  variants        run 1: raw over every graph, engine on the fastest fp16 one, golden
  engine-configs  run 2: fp16-opt alone, then the engine with 12 tokenizer threads / 2 sessions / token ids
  attention       run 3: kernels, raw over attention variants x kernel switches, engine on the fastest
Give the same preset to the prep-bg call, so that prep makes the graphs the preset needs.

Settings (default):
  DEVICE (cuda)  KIT (/tmp/gpukit: the unpacked gpu-kit)  W (/tmp/ec-gpu: graphs, refs, logs)
  BUNDLE (.gpu-bundle: scripts/gpu/bundle.sh's output)  CUDA_LIBS (/usr/local/cuda-13.0/lib64:/usr/lib/x86_64-linux-gnu)
  OUT (/tmp/ec-out; the device tool sets it)  RUN_NAME (the preset, else check)
  RESULTS ($OUT/<utc date>-<gpu>-$RUN_NAME): the results folder, named like bench/gpu/results/*
  SECONDS_PER_CELL (1)  PREP_WAIT (240 s)
  prep:    PY (python3)  PREP_VARIANTS (fp32 fp32-opt fp16-opt fp16-opt2 fp16-mha; also fp16-mask2d,
           fp16-mha-mask2d)  HEADS (12)  HIDDEN (768)  EXTRA (export_bert/torch_ref args, e.g. --tiny)
           TORCH_ARGS (torch_ref.py args)  TORCH_EARLY (set: PyTorch alongside the optimiser runs)
  kernels: KERNEL_VARIANTS (every fp16*.onnx in $W)  KERNEL_ENVS (default;ORT_ENABLE_CUDNN_FLASH_ATTENTION=1)
           KERNEL_CASE (256:128)  KERNEL_LIMIT (20 s each)
  raw:     RAW_SPECS (auto): ';'-separated "VARIANT[,VARIANT...] [ENV=VALUE ...]"; auto = every graph
           in $W, fp32 first, fp16-opt2 left out when it has fp16-opt's operators
           RAW_CASES (engine-bench's: 1:16 ... 256:512)  RAW_LIMIT (200 s each)  RAW_ARGS
  engine:  ENGINE_VARIANT (auto: the fp16 graph, with its ENV, that was fastest in raw over
           ENGINE_PICK (256:128,256:512), each cell relative to the best there)
           ENGINE_CONFIGS (text default 1): ';'-separated "INPUT THREADS SESSIONS [ENV=VALUE ...]",
           INPUT text|tokens, THREADS a number or default (the engine's own)
           ENGINE_CELLS (engine-bench's)  ENGINE_LENGTHS (16,128,512)  ENGINE_LIMIT (150 s each)  ENGINE_ARGS
  golden:  FIXTURE (test/fixtures/tiny-bert)  GOLDEN_LIMIT (60 s)

Writes to $RESULTS: gpu.txt, params.txt (every setting), torch.json, *.stats.json, kernels.txt,
raw.json / engine.json ({spec: engine-bench JSON}), golden.json, summary.md, logs.tgz.
Rehearse on a CPU first (see scripts/gpu/README.md).
EOF
}

die() { echo "check.sh: $*" >&2; exit 2; }

STEPS=() PRESET=
while [ $# -gt 0 ]; do
  case $1 in
    -h | --help) usage; exit 0 ;;
    --preset) [ $# -ge 2 ] || die "--preset needs a name"; PRESET=$2; shift ;;
    --preset=*) PRESET=${1#*=} ;;
    prep | prep-bg | kernels | raw | engine | golden) STEPS+=("$1") ;;
    *) if [[ $1 =~ ^[A-Z_][A-Z0-9_]*= ]]; then export "${1?}"; else die "unknown argument '$1' (see --help)"; fi ;;
  esac
  shift
done

# A preset only fills what is not set already.
case $PRESET in
  '') ;;
  variants)
    PRESET_STEPS="raw engine golden"
    : "${ENGINE_PICK:=256:128}" ;;
  engine-configs)
    PRESET_STEPS="raw engine"
    : "${PREP_VARIANTS:=fp16-opt}" "${TORCH_EARLY:=1}" "${TORCH_ARGS:=--cases 32:128,256:16,256:128,256:512 --n 64}" "${PREP_WAIT:=150}"
    : "${RAW_SPECS:=fp16-opt}" "${RAW_CASES:=32:128,256:16,256:128,256:512}" "${RAW_LIMIT:=60}"
    : "${ENGINE_VARIANT:=fp16-opt}" "${ENGINE_CONFIGS:=text 12 1;text 12 2;tokens 4 1;tokens 4 2}" "${ENGINE_CELLS:=256x1,2048x1,64x32}" "${ENGINE_LIMIT:=45}" ;;
  attention)
    PRESET_STEPS="kernels raw engine"
    : "${PREP_VARIANTS:=fp16-opt fp16-mha fp16-mask2d fp16-mha-mask2d}" "${TORCH_EARLY:=1}" "${PREP_WAIT:=150}"
    : "${RAW_SPECS:=fp16-opt;fp16-opt ORT_DISABLE_FUSED_ATTENTION=1;fp16-opt ORT_ENABLE_CUDNN_FLASH_ATTENTION=1;fp16-mha;fp16-mha ORT_ENABLE_CUDNN_FLASH_ATTENTION=1;fp16-mask2d;fp16-mha-mask2d;fp16-mha-mask2d ORT_ENABLE_CUDNN_FLASH_ATTENTION=1}"
    : "${RAW_CASES:=32:128,256:128,256:512}" "${RAW_LIMIT:=40}"
    : "${ENGINE_CONFIGS:=tokens default 2}" "${ENGINE_CELLS:=2048x1,64x32}" "${ENGINE_LENGTHS:=128,512}" "${ENGINE_LIMIT:=45}" ;;
  *) die "unknown preset '$PRESET' (variants, engine-configs, attention)" ;;
esac
[ ${#STEPS[@]} -gt 0 ] || read -ra STEPS <<< "${PRESET_STEPS:-raw engine golden}"

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DEVICE=${DEVICE:-cuda} KIT=${KIT:-/tmp/gpukit} W=${W:-/tmp/ec-gpu} BUNDLE=${BUNDLE:-.gpu-bundle}
OUT=${OUT:-/tmp/ec-out} RUN_NAME=${RUN_NAME:-${PRESET:-check}} SECS=${SECONDS_PER_CELL:-1}
PY=${PY:-python3} HEADS=${HEADS:-12} HIDDEN=${HIDDEN:-768} EXTRA=${EXTRA:-}
PREP_VARIANTS=${PREP_VARIANTS:-fp32 fp32-opt fp16-opt fp16-opt2 fp16-mha}
export LD_LIBRARY_PATH=${CUDA_LIBS:-/usr/local/cuda-13.0/lib64:/usr/lib/x86_64-linux-gnu}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
NODE=$KIT/root/node
B=$BUNDLE/engine-bench.js
t0=$(date +%s)
stamp() { echo "[check +$(( $(date +%s) - t0 ))s] $*"; }
export PYTHONUNBUFFERED=1

# ---------------------------------------------------------------------------------------------
# prep: the graphs and the PyTorch reference, all under $W

# The python scripts are copied into $W first: the next device call may replace the checkout
# while prep still runs in the background.
stage_prep() {
  mkdir -p "$W/scripts" || die "cannot create $W"
  [ "$HERE" = "$W/scripts" ] && return
  cp "$HERE/export_bert.py" "$HERE/torch_ref.py" "$HERE/../model/optimize.py" "$HERE/check.sh" "$W/scripts/" || die "cannot copy the prep scripts into $W/scripts"
}

optimize_variant() {  # name: one graph variant, as `models optimize` makes it with other options
  local name=$1 args
  case $name in
    fp32) args="--no-fuse" ;;                                 # pooling head only: ORT's own runtime fusions
    fp32-opt) args="--use-gpu" ;;                             # fused, fp32
    fp16-opt) args="--use-gpu --fp16" ;;                      # fused, fp16 (Attention op)
    fp16-opt2) args="--use-gpu --fp16 --opt-level 2" ;;
    fp16-mha) args="--use-gpu --fp16 --mha" ;;                # fused, fp16, MultiHeadAttention op
    fp16-mask2d) args="--use-gpu --fp16 --mask-format 2d" ;;  # Attention fed the raw 2D mask
    fp16-mha-mask2d) args="--use-gpu --fp16 --mha --mask-format 2d" ;;
    *) echo "unknown variant $name"; touch "FAILED-$name"; return ;;
  esac
  # shellcheck disable=SC2086
  $PY scripts/optimize.py bert.onnx "$name.onnx" --heads "$HEADS" --hidden "$HIDDEN" --stats "$name.stats.json" $args > "$name.log" 2>&1 \
    || { touch "FAILED-$name"; echo "optimize $name failed:"; tail -20 "$name.log"; }
}

torch_ref() {
  # shellcheck disable=SC2086
  $PY scripts/torch_ref.py "$W" $EXTRA ${TORCH_ARGS:-} > torch.log 2>&1 || { touch FAILED-torch; echo "torch_ref failed:"; tail -20 torch.log; }
}

step_prep() (
  stage_prep
  cd "$W" || exit 1
  rm -f done FAILED-*
  stamp "python: $($PY -c 'import torch, transformers, onnx, onnxruntime as o; print(torch.__version__, transformers.__version__, onnx.__version__, o.__version__, o.get_available_providers())' 2>&1 | tail -1)"
  # shellcheck disable=SC2086
  $PY scripts/export_bert.py bert.onnx --arch classic $EXTRA > export.log 2>&1 || { touch FAILED-export; stamp "export failed"; tail -20 export.log; }
  grep export_bert export.log
  stamp "exported"
  local torch_pid=
  if [ -n "${TORCH_EARLY:-}" ]; then torch_ref & torch_pid=$!; fi   # the optimiser runs on the CPU only
  if [ -f bert.onnx ]; then
    local pids=() v
    for v in $PREP_VARIANTS; do optimize_variant "$v" & pids+=($!); done
    wait "${pids[@]}"
    for v in $PREP_VARIANTS; do grep -h "^optimize:" "$v.log"; done
    ls -la ./*.onnx
  fi
  stamp "optimised"
  if [ -n "$torch_pid" ]; then wait "$torch_pid"; else torch_ref; fi
  grep -E "^torch" torch.log
  stamp "torch reference done"
  touch done
)

step_prep_bg() {
  stage_prep
  rm -f "$W/done"
  # Settings travel in the environment: export the ones prep reads.
  export W PY HEADS HIDDEN EXTRA PREP_VARIANTS TORCH_ARGS="${TORCH_ARGS:-}" TORCH_EARLY="${TORCH_EARLY:-}"
  (setsid nohup bash "$W/scripts/check.sh" prep > "$W/prep.log" 2>&1 < /dev/null &)
  stamp "prep started in the background (log: $W/prep.log)"
}

# ---------------------------------------------------------------------------------------------
# The device steps: one results folder, one opening

OPENED= PREPPED=
open_results() {
  [ -n "$OPENED" ] && return
  OPENED=1
  [ -x "$NODE" ] || die "no node at $NODE: unpack the gpu-kit first (scripts/gpu/unpack.sh, one part a call), or set KIT"
  [ -d "$KIT/root/onnxruntime-node" ] || die "no $KIT/root/onnxruntime-node: the gpu-kit is incomplete"
  [ -f "$B" ] || die "no $B: run scripts/gpu/bundle.sh here and carry $BUNDLE"
  # onnxruntime-node for the bundle: the kit's CUDA-enabled one, beside the bundle (ESM ignores NODE_PATH)
  mkdir -p "$BUNDLE/node_modules" && ln -sfn "$KIT/root/onnxruntime-node" "$BUNDLE/node_modules/onnxruntime-node"
  local gpu slug
  gpu=$(nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader 2>/dev/null | head -1)
  slug=$(printf '%s' "${gpu%%,*}" | tr 'A-Z' 'a-z' | sed -E 's/^nvidia //; s/[^a-z0-9]+/-/g; s/^-|-$//g')
  if [ -z "${RESULTS:-}" ]; then
    RESULTS="$OUT/$(date -u +%F)-${slug:-$DEVICE}-$RUN_NAME"
    local base=$RESULTS n=2
    while [ -e "$RESULTS" ]; do RESULTS="$base-$n"; n=$((n + 1)); done
  fi
  mkdir -p "$RESULTS" || die "cannot create $RESULTS"
  echo "${gpu:-no nvidia-smi (device $DEVICE)}" | tee "$RESULTS/gpu.txt"
  { echo "steps: ${STEPS[*]}"; echo "preset: ${PRESET:-none}"; echo "ort: $(cat "$KIT/root/onnxruntime-node/package.json" 2>/dev/null | grep -m1 '"version"')"
    for v in DEVICE W BUNDLE SECONDS_PER_CELL PREP_VARIANTS TORCH_ARGS KERNEL_VARIANTS KERNEL_ENVS KERNEL_CASE RAW_SPECS RAW_CASES RAW_ARGS \
             ENGINE_VARIANT ENGINE_PICK ENGINE_CONFIGS ENGINE_CELLS ENGINE_LENGTHS ENGINE_ARGS FIXTURE; do echo "$v=${!v:-(default)}"; done
  } > "$RESULTS/params.txt"
  echo "# GPU check $(date -u +%FT%TZ) on $(cat "$RESULTS/gpu.txt") (steps: ${STEPS[*]})" > "$RESULTS/summary.md"
}

wait_prep() {
  [ -n "$PREPPED" ] && return
  PREPPED=1
  stamp "waiting for prep ($W/done)"
  local _
  for _ in $(seq "${PREP_WAIT:-240}"); do [ -f "$W/done" ] && break; sleep 1; done
  [ -f "$W/done" ] || stamp "prep NOT done; going on with what is there"
  ls "$W"/FAILED-* 2>/dev/null && stamp "some prep steps failed (see logs.tgz)"
  cp "$W/torch.json" "$W"/*.stats.json "$RESULTS/" 2>/dev/null
  { echo; echo '## prep'; echo '```'; grep -h -E '^(\[check|optimize:|export_bert|torch)' "$W/prep.log" "$W/torch.log" 2>/dev/null | sort -u; echo '```'; } | tee -a "$RESULTS/summary.md"
}

# spec "WORD [ENV=VALUE ...]" -> SPEC_HEAD=WORD, SPEC_ENV=(ENV=VALUE ...)
split_spec() { read -ra SPEC_ENV <<< "$1"; SPEC_HEAD=${SPEC_ENV[0]:-}; SPEC_ENV=("${SPEC_ENV[@]:1}"); }

# {spec: JSON} from the files DIR/N.json with their specs in DIR/N.spec
merge_json() {  # dir out
  "$NODE" -e '
    const fs = require("fs"), path = require("path"), [dir, out] = process.argv.slice(1), all = {};
    const files = fs.readdirSync(dir).filter((f) => f.endsWith(".json")).sort((a, b) => parseInt(a) - parseInt(b));
    for (const f of files) all[fs.readFileSync(path.join(dir, f.replace(/json$/, "spec")), "utf8").trim()] = JSON.parse(fs.readFileSync(path.join(dir, f), "utf8"));
    fs.writeFileSync(out, JSON.stringify(all, null, 1));' "$1" "$2"
}

same_ops() {  # a b: the two graphs have the same operator counts
  "$NODE" -e 'const ops = (f) => JSON.stringify(JSON.parse(require("fs").readFileSync(f, "utf8")).ops);
    process.exit(ops(process.argv[1]) === ops(process.argv[2]) ? 0 : 1)' "$W/$1.stats.json" "$W/$2.stats.json" 2>/dev/null
}

auto_variants() {
  local f v seen=" " out=()
  for f in "$W"/fp32*.onnx "$W"/fp16*.onnx "$W"/*.onnx; do
    [ -f "$f" ] || continue
    v=$(basename "$f" .onnx)
    [ "$v" = bert ] || [[ $seen == *" $v "* ]] && continue
    seen+="$v "
    # opt level 2 adds nothing when its graph has level 0's operators
    [[ $v == *-opt2 ]] && same_ops "${v%2}" "$v" && continue
    out+=("$v")
  done
  (IFS=,; echo "${out[*]}")
}

step_kernels() {
  open_results; wait_prep
  local v e variants=${KERNEL_VARIANTS:-$(cd "$W" && ls fp16*.onnx 2>/dev/null | sed 's/\.onnx$//' | tr '\n' ' ')}
  stamp "attention kernel per graph (one ${KERNEL_CASE:-256:128} batch)"
  for v in $variants; do
    IFS=';' read -ra envs <<< "${KERNEL_ENVS:-default;ORT_ENABLE_CUDNN_FLASH_ATTENTION=1}"
    for e in "${envs[@]}"; do
      # shellcheck disable=SC2046
      echo "$v $e: $(env ORT_ENABLE_ATTENTION_KERNEL_DEBUG_INFO=1 $([ "$e" = default ] || echo "$e") timeout "${KERNEL_LIMIT:-20}" "$NODE" "$B" raw --dir "$W" --device "$DEVICE" \
        --variants "$v" --cases "${KERNEL_CASE:-256:128}" --seconds 0 2>&1 | grep -o 'SdpaKernel=[A-Z_]*' | sort | uniq -c | tr '\n' ' ')"
    done
  done | tee "$RESULTS/kernels.txt"
  { echo; echo '## kernels'; echo '```'; cat "$RESULTS/kernels.txt"; echo '```'; } >> "$RESULTS/summary.md"
}

step_raw() {
  open_results; wait_prep
  local specs spec n=0
  specs=${RAW_SPECS:-auto}
  [ "$specs" = auto ] && specs=$(auto_variants)
  IFS=';' read -ra specs <<< "$specs"
  rm -rf "$W/raw" && mkdir -p "$W/raw"
  for spec in "${specs[@]}"; do
    split_spec "$spec"
    local have= v
    for v in ${SPEC_HEAD//,/ }; do [ -f "$W/$v.onnx" ] && have=1; done
    [ -n "$have" ] || { stamp "raw: no graph for $spec in $W; skipped"; continue; }
    n=$((n + 1))
    stamp "raw session benchmark: $spec"
    echo "$spec" > "$W/raw/$n.spec"
    # shellcheck disable=SC2086
    env "${SPEC_ENV[@]}" timeout "${RAW_LIMIT:-200}" "$NODE" "$B" raw --dir "$W" --device "$DEVICE" --variants "$SPEC_HEAD" \
      ${RAW_CASES:+--cases "$RAW_CASES"} --seconds "$SECS" --json "$W/raw/$n.json" ${RAW_ARGS:-} 2>&1 | tee "$W/raw-$n.log"
    { echo; echo "## raw: $spec"; sed -n '/^| batch/,$p' "$W/raw-$n.log"; } >> "$RESULTS/summary.md"
  done
  merge_json "$W/raw" "$RESULTS/raw.json"
}

# The fp16 graph (and its ENV) with the best sequences/s over ENGINE_PICK, each cell relative to the best there.
pick_variant() {
  "$NODE" -e '
    const [file, pick] = process.argv.slice(1), cells = pick.split(",").map((c) => c.split(":").map(Number));
    const cand = [];
    for (const [spec, r] of Object.entries(JSON.parse(require("fs").readFileSync(file, "utf8")))) {
      const env = spec.split(/\s+/).slice(1).join(" ");
      for (const [v, e] of Object.entries(r.variants ?? {})) if (v.startsWith("fp16"))
        cand.push({ spec: `${v} ${env}`.trim(), s: cells.map(([b, l]) => (e.timings ?? []).find((t) => t.batch === b && t.len === l)?.seq_s ?? 0) });
    }
    const top = cells.map((_, i) => Math.max(1e-9, ...cand.map((c) => c.s[i])));
    let best = "fp16-opt", score = 0;
    for (const c of cand) { const s = c.s.reduce((a, x, i) => a + x / top[i], 0); if (s > score) { score = s; best = c.spec; } }
    console.log(best);' "$RESULTS/raw.json" "${ENGINE_PICK:-256:128,256:512}" 2>/dev/null || echo fp16-opt
}

step_engine() {
  open_results; wait_prep
  local variant config configs n=0 ev threads
  variant=${ENGINE_VARIANT:-auto}
  [ "$variant" = auto ] && variant=$(pick_variant)
  split_spec "$variant"; local v=$SPEC_HEAD venv=("${SPEC_ENV[@]}")
  IFS=';' read -ra configs <<< "${ENGINE_CONFIGS:-text default 1}"
  rm -rf "$W/engine" && mkdir -p "$W/engine"
  for config in "${configs[@]}"; do
    n=$((n + 1)); read -ra ev <<< "$config"
    threads=${ev[1]:-default}
    stamp "engine on $variant: input ${ev[0]:-text}, tokenizer threads $threads, sessions ${ev[2]:-1}"
    echo "$variant | $config" > "$W/engine/$n.spec"
    # shellcheck disable=SC2086
    env "${venv[@]}" "${ev[@]:3}" timeout "${ENGINE_LIMIT:-150}" "$NODE" "$B" engine --dir "$W" --device "$DEVICE" --variant "$v" \
      --input "${ev[0]:-text}" --replicas "${ev[2]:-1}" $([ "$threads" = default ] || echo "--tokenizer-threads $threads") \
      ${ENGINE_CELLS:+--cells "$ENGINE_CELLS"} ${ENGINE_LENGTHS:+--lengths "$ENGINE_LENGTHS"} --seconds "$SECS" \
      --json "$W/engine/$n.json" ${ENGINE_ARGS:-} 2>&1 | tee "$W/engine-$n.log"
    { echo; echo "## engine: $variant | $config"; grep -E '^(engine|\|)' "$W/engine-$n.log"; } >> "$RESULTS/summary.md"
  done
  merge_json "$W/engine" "$RESULTS/engine.json"
}

step_golden() {
  open_results
  stamp "golden test through the engine on $DEVICE"
  timeout "${GOLDEN_LIMIT:-60}" "$NODE" "$B" golden --device "$DEVICE" --fixture "${FIXTURE:-$PWD/test/fixtures/tiny-bert}" \
    --json "$RESULTS/golden.json" 2>&1 | tee "$W/golden.log"
  { echo; echo '## golden'; grep -E '^golden' "$W/golden.log"; } >> "$RESULTS/summary.md"
}

mkdir -p "$W"
for step in "${STEPS[@]}"; do "step_${step//-/_}"; done
if [ -n "$OPENED" ]; then
  (cd "$W" && tar czf "$RESULTS/logs.tgz" $(ls ./*.log ./*.stats.json FAILED-* 2>/dev/null)) 2>/dev/null
  stamp "done: $RESULTS"
fi
