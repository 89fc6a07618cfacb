"""PyTorch reference on the GPU for the same random-weight BERT as export_bert.py (seed 0):
  1. throughput, sequences/s, fp32 and fp16, sdpa attention (as users run it), at batch 1/32/256
     x length 16/128/512, random ids and an all-ones mask (what the ONNX benchmark feeds too);
  2. reference vectors for N random sequences of mixed lengths (framed with [CLS] ... [SEP],
     right-padded in length-sorted batches), masked mean pooled and L2-normalised, in fp32 with
     TF32 off, and in fp16, for the fp16-vs-fp32 check of the ONNX graphs and the engine.

Usage: python3 torch_ref.py OUTDIR [--tiny] [--n 512] [--cls 2] [--sep 3] [--seconds 1.0] [--device cuda]
Writes OUTDIR/torch.json, ref-lengths.bin (int32), ref-ids.bin (int32, back to back),
ref-fp32.bin and ref-fp16.bin (float32, N x hidden).
"""
import argparse
import copy
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_bert import make_config, make_hf  # noqa: E402

CASES = [(1, 16), (1, 128), (1, 512), (32, 16), (32, 128), (32, 512), (256, 16), (256, 128), (256, 512)]


def pooled(model, ids, mask):
    h = model(input_ids=ids, token_type_ids=torch.zeros_like(ids), attention_mask=mask).last_hidden_state
    m = mask.unsqueeze(-1).to(h.dtype)
    mean = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(mean.float(), dim=-1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--cls", type=int, default=2)
    ap.add_argument("--sep", type=int, default=3)
    ap.add_argument("--max-len", type=int, default=512)
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--cases", default=",".join(f"{b}:{L}" for b, L in CASES))
    ap.add_argument("--load-weights")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    dev = a.device
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False

    cfg = make_config(a.tiny)
    cfg._attn_implementation = "sdpa"
    model = make_hf(cfg, a.load_weights).to(dev)
    info = {"torch": torch.__version__, "device": torch.cuda.get_device_name(0) if dev == "cuda" else "cpu",
            "tf32": False, "attn": "sdpa", "timings": []}
    print(f"torch_ref: torch {torch.__version__} on {info['device']}", flush=True)

    # 2. reference vectors first (cheap), so a timing failure still leaves them
    g = np.random.default_rng(1234)
    lengths = g.integers(3, a.max_len + 1, a.n).astype(np.int32)
    lengths[:4] = [3, 16, 128, a.max_len]
    seqs = []
    for L in lengths:
        s = g.integers(5, 30000, L).astype(np.int32)
        s[0], s[-1] = a.cls, a.sep
        seqs.append(s)
    order = np.argsort(lengths, kind="stable")
    refs = {}
    for dtype in (torch.float32, torch.float16):
        m = copy.deepcopy(model).to(dtype).eval()
        out = np.zeros((a.n, cfg.hidden_size), np.float32)
        with torch.inference_mode():
            for start in range(0, a.n, 64):
                idx = order[start:start + 64]
                S = int(lengths[idx].max())
                ids = torch.zeros(len(idx), S, dtype=torch.long)
                mask = torch.zeros(len(idx), S, dtype=torch.long)
                for r, i in enumerate(idx):
                    ids[r, :lengths[i]] = torch.from_numpy(seqs[i]).long()
                    mask[r, :lengths[i]] = 1
                out[idx] = pooled(m, ids.to(dev), mask.to(dev)).cpu().numpy()
        refs[str(dtype)[6:]] = out
    lengths.tofile(os.path.join(a.out, "ref-lengths.bin"))
    np.concatenate(seqs).astype(np.int32).tofile(os.path.join(a.out, "ref-ids.bin"))
    refs["float32"].tofile(os.path.join(a.out, "ref-fp32.bin"))
    refs["float16"].tofile(os.path.join(a.out, "ref-fp16.bin"))
    cos = 1 - (refs["float32"] * refs["float16"]).sum(1)
    info["ref"] = {"n": a.n, "hidden": cfg.hidden_size, "cls": a.cls, "sep": a.sep,
                   "torch_fp16_vs_fp32_cos_dist_max": float(cos.max()), "torch_fp16_vs_fp32_cos_dist_mean": float(cos.mean())}
    print(f"torch_ref: torch fp16 vs fp32 over {a.n} sequences: cosine distance max {cos.max():.3g}, mean {cos.mean():.3g}", flush=True)
    with open(os.path.join(a.out, "torch.json"), "w") as f:
        json.dump(info, f, indent=1)

    # 1. throughput
    cases = [tuple(map(int, c.split(":"))) for c in a.cases.split(",")]
    for dtype in (torch.float32, torch.float16):
        m = copy.deepcopy(model).to(dtype).eval()
        for b, L in cases:
            ids = torch.randint(5, 30000, (b, L), device=dev)
            tt = torch.zeros_like(ids)
            am = torch.ones_like(ids)
            with torch.inference_mode():
                for _ in range(3):
                    m(input_ids=ids, token_type_ids=tt, attention_mask=am)
                if dev == "cuda":
                    torch.cuda.synchronize()
                n, t0 = 0, time.perf_counter()
                while n < 3 or time.perf_counter() - t0 < a.seconds:
                    m(input_ids=ids, token_type_ids=tt, attention_mask=am)
                    n += 1
                    if dev == "cuda" and n % 8 == 0:
                        torch.cuda.synchronize()
                if dev == "cuda":
                    torch.cuda.synchronize()
                dt = time.perf_counter() - t0
            row = {"dtype": str(dtype)[6:], "batch": b, "len": L, "seq_s": n * b / dt, "ms_per_batch": dt * 1000 / n}
            info["timings"].append(row)
            print(f"torch {row['dtype']} batch {b} len {L}: {row['seq_s']:.0f} seq/s, {row['ms_per_batch']:.2f} ms/batch", flush=True)
            with open(os.path.join(a.out, "torch.json"), "w") as f:
                json.dump(info, f, indent=1)


if __name__ == "__main__":
    main()
