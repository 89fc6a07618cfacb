#!/usr/bin/env bash
# Bundle the GPU benchmark with the engine it drives (src/backends/onnx) into OUTDIR (default
# .gpu-bundle, ignored via .git/info/exclude, carried to the GPU machine). The worker entry
# points are bundled beside it under their own names, where siblingModule(import.meta.url, ...)
# looks for them. onnxruntime-node stays external: on the GPU machine it is the gpu-kit's
# CUDA-enabled copy, linked in as OUTDIR/node_modules/onnxruntime-node.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-.gpu-bundle}
rm -rf "$out"
node_modules/.bin/esbuild bench/gpu/engine-bench.mjs src/backends/onnx/session-worker.ts src/backends/onnx/tokenize-worker.ts \
  --bundle --platform=node --format=esm --target=node20 --external:onnxruntime-node \
  --entry-names='[name]' --outdir="$out" --log-level=warning \
  --banner:js="import { createRequire as __ecCreateRequire } from 'node:module'; const require = __ecCreateRequire(import.meta.url);"
ls -la "$out"
