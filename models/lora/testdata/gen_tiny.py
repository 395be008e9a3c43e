"""Make the torch reference for kiln's LoRA merge (run once; the Go tests
read the files it writes and never need Python).

A tiny UNet and CLIP-like text encoder whose modules are named as in
diffusers' UNet2DConditionModel and transformers' CLIPTextModel, so that
torch.onnx's exporter gives their nodes the real names
(/down_blocks.0/attentions.0/transformer_blocks.0/attn1/to_q/MatMul, ...)
and a kohya LoRA uses the real keys. The graphs are exported as optimum
exports them (TorchScript exporter, opset 14, dynamic batch and size).
Then a random kohya LoRA is made for both, merged into the torch weights
(W + scale * alpha/rank * up @ down), and the merged models are exported
too: kiln merging the LoRA into the first pair must sample the image the
second pair samples.

    /usr/bin/python3 gen_tiny.py   # writes into this folder
"""
import json
import math
import os
import struct

import torch
from torch import nn

torch.manual_seed(1234)
OUT = os.path.dirname(os.path.abspath(__file__))
C, D, LAT, SEQ, VOCAB = 16, 32, 4, 77, 97
RANK, ALPHA, SCALE = 4, 2.0, 0.8


class Attention(nn.Module):
    def __init__(self, dim, ctx_dim):
        super().__init__()
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(ctx_dim, dim, bias=False)
        self.to_v = nn.Linear(ctx_dim, dim, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(dim, dim)])

    def forward(self, x, ctx=None):
        ctx = x if ctx is None else ctx
        q, k, v = self.to_q(x), self.to_k(ctx), self.to_v(ctx)
        w = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(q.shape[-1]), dim=-1)
        return self.to_out[0](w @ v)


class GELU(nn.Module):
    def __init__(self, dim, out):
        super().__init__()
        self.proj = nn.Linear(dim, out)

    def forward(self, x):
        return torch.nn.functional.gelu(self.proj(x))


class FeedForward(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.net = nn.ModuleList([GELU(dim, 4 * dim), nn.Identity(), nn.Linear(4 * dim, dim)])

    def forward(self, x):
        return self.net[2](self.net[1](self.net[0](x)))


class TransformerBlock(nn.Module):
    def __init__(self, dim, ctx_dim):
        super().__init__()
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn1, self.attn2 = Attention(dim, dim), Attention(dim, ctx_dim)
        self.ff = FeedForward(dim)

    def forward(self, x, ctx):
        x = x + self.attn1(self.norm1(x))
        x = x + self.attn2(self.norm2(x), ctx)
        return x + self.ff(self.norm3(x))


class Transformer2D(nn.Module):
    def __init__(self, dim, ctx_dim):
        super().__init__()
        self.proj_in = nn.Linear(dim, dim)
        self.transformer_blocks = nn.ModuleList([TransformerBlock(dim, ctx_dim)])
        self.proj_out = nn.Linear(dim, dim)

    def forward(self, x, ctx):
        b, c, h, w = x.shape
        s = x.permute(0, 2, 3, 1).reshape(b, h * w, c)
        s = self.proj_in(s)
        s = self.transformer_blocks[0](s, ctx)
        s = self.proj_out(s)
        return x + s.reshape(b, h, w, c).permute(0, 3, 1, 2)


class ResnetBlock(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.conv1 = nn.Conv2d(dim, dim, 3, padding=1)
        self.time_emb_proj = nn.Linear(dim, dim)
        self.conv2 = nn.Conv2d(dim, dim, 3, padding=1)

    def forward(self, x, emb):
        h = torch.nn.functional.silu(self.conv1(x) + self.time_emb_proj(emb)[:, :, None, None])
        return x + self.conv2(h)


class DownBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock(C)])
        self.attentions = nn.ModuleList([Transformer2D(C, D)])

    def forward(self, x, emb, ctx):
        return self.attentions[0](self.resnets[0](x, emb), ctx)


class TimestepEmbedding(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear_1 = nn.Linear(C, C)
        self.linear_2 = nn.Linear(C, C)

    def forward(self, t):
        return self.linear_2(torch.nn.functional.silu(self.linear_1(t)))


class TinyUNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv_in = nn.Conv2d(LAT, C, 3, padding=1)
        self.time_embedding = TimestepEmbedding()
        self.down_blocks = nn.ModuleList([DownBlock()])
        self.conv_out = nn.Conv2d(C, LAT, 3, padding=1)

    def forward(self, sample, timestep, encoder_hidden_states):
        half = C // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
        args = timestep.reshape(-1, 1).float() * freqs[None]
        t = torch.cat([torch.cos(args), torch.sin(args)], dim=-1).expand(sample.shape[0], C)
        emb = self.time_embedding(t)
        h = self.conv_in(sample)
        h = self.down_blocks[0](h, emb, encoder_hidden_states)
        # The input passes through, so the predicted noise is about the
        # (scaled) noisy sample, as a trained UNet's is, and sampling
        # neither explodes nor saturates the image.
        return sample + 0.3 * self.conv_out(torch.nn.functional.silu(h))


class CLIPAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(D, D) for _ in range(4))

    def forward(self, x):
        q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)
        w = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(D), dim=-1)
        return self.out_proj(w @ v)


class CLIPMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(D, 2 * D), nn.Linear(2 * D, D)

    def forward(self, x):
        return self.fc2(torch.nn.functional.gelu(self.fc1(x)))


class CLIPLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer_norm1, self.layer_norm2 = nn.LayerNorm(D), nn.LayerNorm(D)
        self.self_attn, self.mlp = CLIPAttention(), CLIPMLP()

    def forward(self, x):
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class Embeddings(nn.Module):
    def __init__(self):
        super().__init__()
        self.token_embedding = nn.Embedding(VOCAB, D)
        self.position_embedding = nn.Embedding(SEQ, D)


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([CLIPLayer()])

    def forward(self, x):
        return self.layers[0](x)


class TextModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.embeddings = Embeddings()
        self.encoder = Encoder()
        self.final_layer_norm = nn.LayerNorm(D)

    def forward(self, input_ids):
        e = self.embeddings
        x = e.token_embedding(torch.remainder(input_ids, VOCAB)) + e.position_embedding.weight[None]
        x = self.final_layer_norm(self.encoder(x))
        return x, x[:, -1]


class TinyTextEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.text_model = TextModel()

    def forward(self, input_ids):
        return self.text_model(input_ids)


def randomize(model):
    # Unit-variance activations, and biases that are not zero, so the
    # tiny model's image depends visibly on every weight.
    with torch.no_grad():
        for p in model.parameters():
            fan_in = p[0].numel() if p.dim() > 1 else 10
            p.copy_(torch.randn_like(p) / math.sqrt(fan_in))


def targets(model, prefix):
    """Modules a kohya LoRA targets: every Linear and Conv2d, keyed like kohya."""
    out = {}
    for name, mod in model.named_modules():
        if isinstance(mod, (nn.Linear, nn.Conv2d)) and "time_embedding" not in name:
            out[prefix + name.replace(".", "_")] = mod
    return out


def make_lora(mods):
    tensors = {}
    for key, mod in sorted(mods.items()):
        w = mod.weight
        down_shape = (RANK,) + tuple(w.shape[1:])
        up_shape = (w.shape[0], RANK) + ((1, 1) if w.dim() == 4 else ())
        tensors[key + ".lora_down.weight"] = torch.randn(down_shape) * 0.3
        tensors[key + ".lora_up.weight"] = torch.randn(up_shape) * 0.3
        tensors[key + ".alpha"] = torch.tensor(ALPHA)
    return tensors


def merge(mods, tensors):
    with torch.no_grad():
        for key, mod in mods.items():
            down = tensors[key + ".lora_down.weight"].flatten(1)
            up = tensors[key + ".lora_up.weight"].flatten(1)
            mod.weight += (SCALE * ALPHA / RANK * (up @ down)).reshape(mod.weight.shape)


def write_safetensors(path, tensors):
    header, body = {}, b""
    for name in sorted(tensors):
        data = tensors[name].contiguous().float().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [len(body), len(body) + len(data)]}
        body += data
    h = json.dumps(header, separators=(",", ":")).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + body)


def export(unet, te, suffix):
    sample = torch.randn(1, LAT, 4, 4)
    ts = torch.tensor(500.0)
    ehs = torch.randn(1, SEQ, D)
    torch.onnx.export(unet, (sample, ts, ehs), os.path.join(OUT, "unet%s.onnx" % suffix), opset_version=14,
                      input_names=["sample", "timestep", "encoder_hidden_states"], output_names=["out_sample"],
                      dynamic_axes={"sample": {0: "batch_size", 2: "height", 3: "width"},
                                    "encoder_hidden_states": {0: "batch_size"},
                                    "out_sample": {0: "batch_size", 2: "height", 3: "width"}},
                      do_constant_folding=True)
    ids = torch.zeros(1, SEQ, dtype=torch.int64)
    torch.onnx.export(te, (ids,), os.path.join(OUT, "text_encoder%s.onnx" % suffix), opset_version=14,
                      input_names=["input_ids"], output_names=["last_hidden_state", "pooler_output"],
                      dynamic_axes={"input_ids": {0: "batch_size"}, "last_hidden_state": {0: "batch_size"},
                                    "pooler_output": {0: "batch_size"}},
                      do_constant_folding=True)


def main():
    unet, te = TinyUNet().eval(), TinyTextEncoder().eval()
    randomize(unet)
    randomize(te)
    export(unet, te, "")
    mods = {**targets(unet, "lora_unet_"), **targets(te, "lora_te_")}
    tensors = make_lora(mods)
    write_safetensors(os.path.join(OUT, "style.safetensors"), tensors)
    merge(mods, tensors)
    export(unet, te, "_merged")
    # Outputs of the merged torch models on fixed inputs, to hold kiln's
    # merge of the first pair to torch directly (4 decimals are far below
    # the tolerance, and keep the file small).
    g = torch.Generator().manual_seed(7)
    sample = torch.randn(1, LAT, 4, 4, generator=g)
    ehs = torch.randn(1, SEQ, D, generator=g)
    ids = (torch.arange(SEQ, dtype=torch.int64) * 7 % VOCAB)[None]
    with torch.no_grad():
        unet_out = unet(sample, torch.tensor(500.0), ehs)
        te_out = te(ids)[0][:, :8]
    r4 = lambda t: [round(v, 4) for v in t.flatten().tolist()]
    with open(os.path.join(OUT, "reference.json"), "w") as f:
        json.dump({"torch": torch.__version__, "rank": RANK, "alpha": ALPHA, "scale": SCALE,
                   "modules": sorted(mods), "timestep": 500.0,
                   "sample": r4(sample), "encoder_hidden_states": r4(ehs), "unet_out": r4(unet_out),
                   "input_ids": ids.flatten().tolist(), "text_out_first8": r4(te_out)}, f)
        f.write("\n")


if __name__ == "__main__":
    main()
