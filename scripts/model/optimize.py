"""The `models optimize` step: make a model directory's ONNX graph fast on a GPU.

  1. ONNX Runtime's transformer optimizer (model_type bert): fuses the embeddings + their layer
     norm (EmbedLayerNormalization, which also turns attention_mask into per-row lengths), each
     self-attention block (Attention: one packed QKV MatMul + flash / memory-efficient / fused
     MHA kernels on CUDA), residual + layer norm (SkipLayerNormalization) and bias + GELU.
  2. Pooling on the GPU: when the graph ends in `last_hidden_state` [batch, seq, hidden], append
     masked mean pooling + L2 normalisation (output `sentence_embedding` [batch, hidden]), so a
     batch returns batch x hidden floats instead of batch x seq x hidden. The engine reads
     `sentence_embedding` in preference to `last_hidden_state` (session.ts).
  3. fp16 (--fp16): weights and activations in half precision, the graph's inputs and outputs
     unchanged (keep_io_types), the pooling head kept in fp32.

Runs wherever `pip install onnx onnxruntime` works (the optimizer is Python; it needs no GPU).
Usage: python3 optimize.py IN.onnx OUT.onnx [--heads 12] [--hidden 768] [--opt-level 0|1|2]
         [--use-gpu] [--fp16] [--no-pool] [--stats STATS.json]
Prints the fused operator counts; exits 3 if --require-attention and no attention was fused.
"""
import argparse
import json
import sys
import time

import onnx
from onnx import TensorProto, helper
from onnxruntime.transformers.fusion_options import AttentionMaskFormat, FusionOptions
from onnxruntime.transformers.onnx_model import OnnxModel
from onnxruntime.transformers.optimizer import optimize_model

POOL_PREFIX = "ec_pool/"
POOLED_OUTPUT = "sentence_embedding"


def opset_of(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 17)


def add_pooling_head(model: onnx.ModelProto, hidden_output: str = "last_hidden_state") -> list[str]:
    """Appends masked mean pooling + L2 normalisation over `hidden_output`; returns the new node names."""
    g = model.graph
    if not any(o.name == hidden_output for o in g.output):
        raise SystemExit(f"optimize: the graph has no output {hidden_output} (outputs: {[o.name for o in g.output]})")
    if not any(i.name == "attention_mask" for i in g.input):
        raise SystemExit("optimize: the graph has no attention_mask input to pool with")
    opset = opset_of(model)
    p = POOL_PREFIX
    nodes = []

    def const(name, values, dtype=TensorProto.FLOAT, dims=None):
        t = helper.make_tensor(p + name, dtype, dims if dims is not None else [len(values)], values)
        g.initializer.append(t)
        return t.name

    def node(op, inputs, name, **attrs):
        nodes.append(helper.make_node(op, inputs, [p + name], name=p + name, **attrs))
        return p + name

    def reduce_sum(x, axis, name):
        if opset >= 13:
            return node("ReduceSum", [x, const(name + "_axes", [axis], TensorProto.INT64)], name, keepdims=1)
        return node("ReduceSum", [x], name, axes=[axis], keepdims=1)

    def unsqueeze(x, axis, name):
        if opset >= 13:
            return node("Unsqueeze", [x, const(name + "_axes", [axis], TensorProto.INT64)], name)
        return node("Unsqueeze", [x], name, axes=[axis])

    def squeeze(x, axis, name):
        if opset >= 13:
            return node("Squeeze", [x, const(name + "_axes", [axis], TensorProto.INT64)], name)
        return node("Squeeze", [x], name, axes=[axis])

    mask = node("Cast", ["attention_mask"], "mask_f", to=TensorProto.FLOAT)       # [B, S]
    mask_row = unsqueeze(mask, 1, "mask_row")                                      # [B, 1, S]
    summed = node("MatMul", [mask_row, hidden_output], "sum")                     # [B, 1, H]
    count = reduce_sum(mask_row, 2, "count")                                      # [B, 1, 1]
    count = node("Max", [count, const("one_e_minus_9", [1e-9], dims=[])], "count_clamped")
    mean = squeeze(node("Div", [summed, count], "mean3"), 1, "mean")             # [B, H]
    sq = node("Mul", [mean, mean], "sq")
    norm = node("Sqrt", [reduce_sum(sq, 1, "sumsq")], "norm")                    # [B, 1]
    norm = node("Max", [norm, const("one_e_minus_12", [1e-12], dims=[])], "norm_clamped")
    nodes.append(helper.make_node("Div", [mean, norm], [POOLED_OUTPUT], name=p + "normalise"))
    g.node.extend(nodes)
    hidden = next(o for o in g.output if o.name == hidden_output)
    elem = hidden.type.tensor_type.elem_type or TensorProto.FLOAT
    dims = [d.dim_param or d.dim_value for d in hidden.type.tensor_type.shape.dim]
    out = helper.make_tensor_value_info(POOLED_OUTPUT, elem, [dims[0] if dims else "batch", dims[2] if len(dims) > 2 else None])
    g.output.remove(hidden)
    g.output.append(out)
    return [n.name for n in nodes]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--hidden", type=int, default=768)
    ap.add_argument("--opt-level", type=int, default=0)
    ap.add_argument("--use-gpu", action="store_true")
    ap.add_argument("--fp16", action="store_true")
    ap.add_argument("--no-pool", action="store_true")
    ap.add_argument("--mha", action="store_true", help="MultiHeadAttention instead of Attention")
    ap.add_argument("--mask-format", choices=["index-end", "2d"], default="index-end",
                    help="what the fused attention gets: per-row lengths (the bert default) or the raw 2D mask")
    ap.add_argument("--no-fuse", action="store_true", help="skip the optimizer: only the pooling head (and --fp16)")
    ap.add_argument("--stats")
    ap.add_argument("--require-attention", action="store_true")
    a = ap.parse_args()

    t0 = time.perf_counter()
    if a.no_fuse:
        m = OnnxModel(onnx.load(a.src))
        stats = {}
        print(f"optimize: {a.src}: no fusion asked for")
    else:
        opts = FusionOptions("bert")
        opts.use_multi_head_attention = a.mha
        if a.mask_format == "2d":
            opts.attention_mask_format = AttentionMaskFormat.AttentionMask
        m = optimize_model(a.src, model_type="bert", num_heads=a.heads, hidden_size=a.hidden,
                           optimization_options=opts, opt_level=a.opt_level, use_gpu=a.use_gpu)
        stats = {k: v for k, v in m.get_fused_operator_statistics().items() if v}
        print(f"optimize: {a.src} opt_level {a.opt_level} use_gpu {a.use_gpu} mha {a.mha}: fused operators {stats}")
    attention = stats.get("Attention", 0) + stats.get("MultiHeadAttention", 0) + stats.get("PackedAttention", 0)
    pool_nodes: list[str] = []
    outputs = [o.name for o in m.model.graph.output]
    if not a.no_pool and POOLED_OUTPUT not in outputs:
        pool_nodes = add_pooling_head(m.model)
        print(f"optimize: appended masked mean pooling + L2 normalisation -> {POOLED_OUTPUT} ({len(pool_nodes)} nodes)")
    if a.fp16:
        # the pooling head (if ours) and the graph's inputs/outputs stay fp32
        m.convert_float_to_float16(keep_io_types=True, node_block_list=pool_nodes)
        print("optimize: converted to fp16 (inputs/outputs kept, pooling head fp32)")
    m.topological_sort()
    m.save_model_to_file(a.dst)
    print(f"optimize: wrote {a.dst} in {time.perf_counter() - t0:.1f} s")
    if a.stats:
        with open(a.stats, "w") as f:
            ops: dict[str, int] = {}
            for n in m.model.graph.node:
                ops[n.op_type] = ops.get(n.op_type, 0) + 1
            json.dump({"src": a.src, "dst": a.dst, "opt_level": a.opt_level, "use_gpu": a.use_gpu, "fp16": a.fp16,
                       "mha": a.mha, "mask_format": a.mask_format, "fused": stats, "ops": ops, "outputs": [o.name for o in m.model.graph.output]}, f, indent=1)
    if a.require_attention and attention == 0:
        sys.exit(3)


if __name__ == "__main__":
    main()
