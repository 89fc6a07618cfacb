"""Generate a BERT-base-sized model directory (random weights, seed 0) for the local-engine bench.

12 layers, 768 hidden, 12 heads, 3072 intermediate, 512 positions, in the layout
src/backends/onnx/model-dir.ts reads: the tokenizer files of test/fixtures/tiny-bert (so the
vocabulary matches: vocab_size is the tokenizer's), config.json, 1_Pooling/config.json,
sentence_bert_config.json and onnx/model.onnx with the fixture's inputs (input_ids,
token_type_ids, attention_mask) and output (last_hidden_state [batch, seq, hidden]).

Needs only Debian's python3-torch and python3-onnx (no transformers): the BERT is written out
here, the way transformers 4.x wrote its forward, and exported with the TorchScript exporter.
The weights are random: the figures it gives are about compute, not quality.

Usage: /usr/bin/python3 scripts/model/make-bert-base.py OUT_DIR [--max-seq-length 512]  (BERT-base's own limit)
"""
import argparse
import json
import math
import os
import shutil
import sys

import torch

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "tiny-bert")
HIDDEN, LAYERS, HEADS, INTERMEDIATE, POSITIONS = 768, 12, 12, 3072, 512


class Layer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.q = torch.nn.Linear(HIDDEN, HIDDEN)
        self.k = torch.nn.Linear(HIDDEN, HIDDEN)
        self.v = torch.nn.Linear(HIDDEN, HIDDEN)
        self.o = torch.nn.Linear(HIDDEN, HIDDEN)
        self.ln1 = torch.nn.LayerNorm(HIDDEN, eps=1e-12)
        self.up = torch.nn.Linear(HIDDEN, INTERMEDIATE)
        self.down = torch.nn.Linear(INTERMEDIATE, HIDDEN)
        self.ln2 = torch.nn.LayerNorm(HIDDEN, eps=1e-12)
        self.head = HIDDEN // HEADS

    def split(self, x):
        return x.view(x.size(0), x.size(1), HEADS, self.head).permute(0, 2, 1, 3)

    def forward(self, h, ext):
        q, k, v = self.split(self.q(h)), self.split(self.k(h)), self.split(self.v(h))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head) + ext
        ctx = torch.matmul(torch.softmax(scores, dim=-1), v).permute(0, 2, 1, 3).contiguous()
        ctx = ctx.view(ctx.size(0), ctx.size(1), HIDDEN)
        a = self.ln1(self.o(ctx) + h)
        return self.ln2(self.down(torch.nn.functional.gelu(self.up(a))) + a)


class Bert(torch.nn.Module):
    def __init__(self, vocab):
        super().__init__()
        self.words = torch.nn.Embedding(vocab, HIDDEN)
        self.positions = torch.nn.Embedding(POSITIONS, HIDDEN)
        self.types = torch.nn.Embedding(2, HIDDEN)
        self.ln = torch.nn.LayerNorm(HIDDEN, eps=1e-12)
        self.layers = torch.nn.ModuleList([Layer() for _ in range(LAYERS)])
        for p in self.parameters():  # BERT's initializer_range; keeps activations sane over 12 layers
            if p.dim() > 1:
                torch.nn.init.normal_(p, std=0.02)

    def forward(self, input_ids, token_type_ids, attention_mask):
        pos = torch.arange(input_ids.size(1), device=input_ids.device).unsqueeze(0)
        h = self.ln(self.words(input_ids) + self.types(token_type_ids) + self.positions(pos))
        ext = (1.0 - attention_mask[:, None, None, :].to(h.dtype)) * -10000.0
        for layer in self.layers:
            h = layer(h, ext)
        return h


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--max-seq-length", type=int, default=512)
    args = ap.parse_args()
    out = os.path.abspath(args.out)
    os.makedirs(os.path.join(out, "onnx"), exist_ok=True)
    os.makedirs(os.path.join(out, "1_Pooling"), exist_ok=True)

    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(os.path.join(FIXTURE, name), os.path.join(out, name))
    vocab = len(json.load(open(os.path.join(out, "tokenizer.json")))["model"]["vocab"])
    # The fixture's tokenizer_config caps at 128; write our own limit so --max-seq-length rules.
    tok_cfg = json.load(open(os.path.join(out, "tokenizer_config.json")))
    tok_cfg["model_max_length"] = args.max_seq_length
    json.dump(tok_cfg, open(os.path.join(out, "tokenizer_config.json"), "w"), indent=1)
    config = {
        "model_type": "bert", "architectures": ["BertModel"], "hidden_size": HIDDEN, "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS, "intermediate_size": INTERMEDIATE, "max_position_embeddings": POSITIONS,
        "vocab_size": vocab, "type_vocab_size": 2, "hidden_act": "gelu", "layer_norm_eps": 1e-12, "pad_token_id": 0,
    }
    json.dump(config, open(os.path.join(out, "config.json"), "w"), indent=1)
    json.dump({"max_seq_length": args.max_seq_length, "do_lower_case": False}, open(os.path.join(out, "sentence_bert_config.json"), "w"))
    json.dump({"word_embedding_dimension": HIDDEN, "pooling_mode_mean_tokens": True, "pooling_mode_cls_token": False,
               "pooling_mode_max_tokens": False}, open(os.path.join(out, "1_Pooling", "config.json"), "w"))

    torch.manual_seed(0)
    model = Bert(vocab).eval()
    ids = torch.randint(5, vocab, (2, 16))
    mask = torch.ones_like(ids)
    mask[1, 10:] = 0
    path = os.path.join(out, "onnx", "model.onnx")
    with torch.no_grad():
        torch.onnx.export(
            model, (ids * mask, torch.zeros_like(ids), mask), path,
            input_names=["input_ids", "token_type_ids", "attention_mask"], output_names=["last_hidden_state"],
            dynamic_axes={n: {0: "batch", 1: "sequence"} for n in ("input_ids", "token_type_ids", "attention_mask", "last_hidden_state")},
            opset_version=14, do_constant_folding=True,
        )
    print(f"{out}: BERT-base ({LAYERS} layers, {HIDDEN} hidden, vocab {vocab}, max_seq_length {args.max_seq_length}), "
          f"{os.path.getsize(path) / 1e6:.0f} MB onnx/model.onnx", file=sys.stderr)


if __name__ == "__main__":
    main()
