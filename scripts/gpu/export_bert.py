"""Export a BERT of nomic-embed-text-v1.5's size (random weights, seed 0: the kit's model) to ONNX
with the legacy TorchScript exporter, whose graph ONNX Runtime's transformer optimizer knows how
to fuse (Attention, EmbedLayerNormalization, SkipLayerNormalization, BiasGelu). The dynamo
exporter's graph kept its attention unfused (see ../shared/gpu-kit/README.md).

Usage: python3 export_bert.py OUT.onnx [--arch hf|classic] [--pooled] [--tiny] [--opset N]
                                       [--save-weights W.pt] [--load-weights W.pt]

--arch hf       transformers' BertModel with eager attention, traced as is.
--arch classic  (default) the same weights in a plain BERT written the way transformers 4.x
                wrote it (additive -10000 mask, matmul/softmax/matmul per layer): the pattern the
                optimizer's FusionAttention matches. Checked against BertModel (max |diff| printed).
--pooled        masked mean pooling + L2 normalisation in the graph, output `sentence_embedding`
                [batch, hidden]; without it the output is `last_hidden_state` [batch, seq, hidden]
                and optimize.py adds the same head (what `models optimize` does to a model dir).
--tiny          hidden 64, 2 layers, 4 heads: for checking the pipeline on a CPU.
"""
import argparse
import math
import sys
import time

import torch
from transformers import BertConfig, BertModel


def make_config(tiny: bool) -> BertConfig:
    if tiny:
        cfg = BertConfig(vocab_size=30528, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                         intermediate_size=128, max_position_embeddings=2048, type_vocab_size=2)
    else:
        cfg = BertConfig(vocab_size=30528, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                         intermediate_size=3072, max_position_embeddings=2048, type_vocab_size=2)
    cfg._attn_implementation = "eager"
    return cfg


def make_hf(cfg: BertConfig, load: str | None = None) -> BertModel:
    torch.manual_seed(0)
    model = BertModel(cfg, add_pooling_layer=False).eval()
    if load:
        model.load_state_dict(torch.load(load, map_location="cpu"))
    return model


class ClassicBert(torch.nn.Module):
    """transformers 4.x BertModel's forward, inference only, over a BertModel's own modules."""

    def __init__(self, hf: BertModel):
        super().__init__()
        self.hf = hf
        c = hf.config
        self.heads = c.num_attention_heads
        self.head_size = c.hidden_size // c.num_attention_heads

    def forward(self, input_ids, token_type_ids, attention_mask):
        emb = self.hf.embeddings
        seq = input_ids.size(1)
        position_ids = emb.position_ids[:, :seq]
        h = emb.word_embeddings(input_ids) + emb.token_type_embeddings(token_type_ids) + emb.position_embeddings(position_ids)
        h = emb.LayerNorm(h)
        ext = attention_mask[:, None, None, :].to(h.dtype)
        ext = (1.0 - ext) * -10000.0
        for layer in self.hf.encoder.layer:
            sa = layer.attention.self
            q = self._heads(sa.query(h))
            k = self._heads(sa.key(h))
            v = self._heads(sa.value(h))
            scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_size)
            scores = scores + ext
            probs = torch.nn.functional.softmax(scores, dim=-1)
            ctx = torch.matmul(probs, v).permute(0, 2, 1, 3).contiguous()
            ctx = ctx.view(ctx.size()[:-2] + (self.heads * self.head_size,))
            out = layer.attention.output
            a = out.LayerNorm(out.dense(ctx) + h)
            inter = layer.intermediate.intermediate_act_fn(layer.intermediate.dense(a))
            o = layer.output
            h = o.LayerNorm(o.dense(inter) + a)
        return h

    def _heads(self, x):
        x = x.view(x.size()[:-1] + (self.heads, self.head_size))
        return x.permute(0, 2, 1, 3)


class HfBert(torch.nn.Module):
    def __init__(self, hf: BertModel):
        super().__init__()
        self.hf = hf

    def forward(self, input_ids, token_type_ids, attention_mask):
        return self.hf(input_ids=input_ids, token_type_ids=token_type_ids, attention_mask=attention_mask).last_hidden_state


class Pooled(torch.nn.Module):
    """Masked mean pooling + L2 normalisation: sentence-transformers' Pooling + Normalize."""

    def __init__(self, body: torch.nn.Module):
        super().__init__()
        self.body = body

    def forward(self, input_ids, token_type_ids, attention_mask):
        h = self.body(input_ids, token_type_ids, attention_mask)
        m = attention_mask.unsqueeze(-1).to(h.dtype)
        mean = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(mean, p=2.0, dim=-1)


def sample_inputs(batch=3, seq=12):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, 30000, (batch, seq), generator=g)
    mask = torch.ones(batch, seq, dtype=torch.long)
    for b in range(1, batch):
        mask[b, seq - 3 * b:] = 0  # right padding, as the engine pads
    ids = ids * mask
    return ids, torch.zeros_like(ids), mask


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--arch", choices=["hf", "classic"], default="classic")
    ap.add_argument("--pooled", action="store_true")
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--opset", type=int, default=17)
    ap.add_argument("--save-weights")
    ap.add_argument("--load-weights")
    a = ap.parse_args()

    cfg = make_config(a.tiny)
    hf = make_hf(cfg, a.load_weights)
    if a.save_weights:
        torch.save(hf.state_dict(), a.save_weights)
    body = ClassicBert(hf) if a.arch == "classic" else HfBert(hf)
    model = (Pooled(body) if a.pooled else body).eval()

    ids, tt, mask = sample_inputs()
    with torch.inference_mode():
        ref = HfBert(hf)(ids, tt, mask)
        got = body(ids, tt, mask)
        m = mask.unsqueeze(-1).bool()
        diff = (ref - got).abs().masked_fill(~m, 0).max().item()
    print(f"export_bert: arch {a.arch} vs transformers BertModel (eager), real tokens: max |diff| {diff:.3g}")
    if diff > 1e-4:
        sys.exit(f"export_bert: {a.arch} body disagrees with BertModel ({diff})")

    names = ["input_ids", "token_type_ids", "attention_mask"]
    out_name = "sentence_embedding" if a.pooled else "last_hidden_state"
    axes = {n: {0: "batch", 1: "sequence"} for n in names}
    axes[out_name] = {0: "batch"} if a.pooled else {0: "batch", 1: "sequence"}
    t0 = time.perf_counter()
    with torch.inference_mode():
        torch.onnx.export(model, (ids, tt, mask), a.out, dynamo=False, opset_version=a.opset,
                          input_names=names, output_names=[out_name], dynamic_axes=axes, do_constant_folding=True)
    print(f"export_bert: wrote {a.out} ({out_name}, opset {a.opset}) in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
