#!/usr/bin/env bash
# Bundle the GPU benchmark with the engine it drives (src/backends/onnx) into OUTDIR (default
# .gpu-bundle, git-ignored, carried to the GPU machine). The worker entry points are bundled
# beside it under their own names, where siblingModule(import.meta.url, ...) looks for them.
# onnxruntime-node stays external: on the GPU machine it is the gpu-kit's CUDA-enabled copy,
# which scripts/gpu/check.sh links in as OUTDIR/node_modules/onnxruntime-node.
#
# Usage: bash scripts/gpu/bundle.sh [OUTDIR]      (here, not on the GPU machine)
# Needs:
#   - node >= 20 on PATH (the bundle targets node20, the kit's node is v20);
#   - esbuild >= 0.18 in node_modules/.bin (no direct dependency: tsx and vitest bring it; `npm ci`);
#   - the repo's sources: bench/gpu/engine-bench.mjs and src/backends/onnx/{session,tokenize}-worker.ts.
# No environment variables; OUTDIR is deleted and rewritten.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-.gpu-bundle}
fail() { echo "bundle.sh: $*" >&2; exit 1; }

command -v node >/dev/null || fail "node is not on PATH: install Node.js 20 or later"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || fail "node $(node --version) is too old: Node.js 20 or later is needed"
esbuild=node_modules/.bin/esbuild
[ -x "$esbuild" ] || fail "no $esbuild: run \`npm ci\` in $(pwd) first (esbuild comes with the dev dependencies)"
esbuild_version=$("$esbuild" --version)
[ "$(printf '%s\n' 0.18.0 "$esbuild_version" | sort -V | head -1)" = 0.18.0 ] || fail "esbuild $esbuild_version is too old: 0.18 or later is needed (npm ci)"
entries=(bench/gpu/engine-bench.mjs src/backends/onnx/session-worker.ts src/backends/onnx/tokenize-worker.ts)
for f in "${entries[@]}"; do [ -f "$f" ] || fail "missing $f: run from a full checkout of embedding-cache"; done
case $out in '' | / | . | src | bench) fail "refusing to write the bundle into '$out' (it is deleted first)" ;; esac

rm -rf "$out"
"$esbuild" "${entries[@]}" \
  --bundle --platform=node --format=esm --target=node20 --external:onnxruntime-node \
  --entry-names='[name]' --outdir="$out" --log-level=warning \
  --banner:js="import { createRequire as __ecCreateRequire } from 'node:module'; const require = __ecCreateRequire(import.meta.url);"
ls -la "$out"
