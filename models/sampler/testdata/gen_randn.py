#!/usr/bin/python3
"""Writes randn.json: reference draws of torch.randn on a seeded CPU
generator, for the Go tests of Generator (seed parity with diffusers and
ComfyUI). Each case seeds one torch.Generator("cpu") and draws the listed
shapes in order, as diffusers does (initial latents, then per-step noise of
an ancestral scheduler; or the VAE posterior sample, then img2img noise).

For every draw it records the number of values, the CRC-32 of the float32
values as little-endian bytes (an exact check of the whole tensor), the
first and last 64 values (16 after a case's first draw) (exactly representable, written with repr) and the
float64 sum.

Needs PyTorch (Debian: apt-get install python3-torch). Run from this
folder: /usr/bin/python3 gen_randn.py > randn.json
"""
import json
import sys
import zlib

import torch

CASES = [
    ("small", 0, [[4]]),
    ("one block", 0, [[16]]),
    ("cached second sample", 0, [[3], [3], [5], [1]]),
    ("small latent", 0, [[1, 4, 8, 8]]),
    ("tails and mixed sizes", 42, [[17], [31], [2, 3], [1, 4, 9, 7], [5]]),
    ("sd 512 latent", 42, [[1, 4, 64, 64]]),
    ("batch of two", 1234, [[2, 4, 64, 64]]),
    ("sdxl 1024 latent", 2024, [[1, 4, 128, 128]]),
    ("seed high bits ignored", 2**32 + 5, [[64]]),
    ("seed low bits", 5, [[64]]),
    ("largest seed", 2**64 - 1, [[3], [100]]),
    ("euler_a 20 steps", 7, [[1, 4, 64, 64]] * 21),
    ("img2img posterior then noise", 9, [[1, 4, 64, 64], [2, 4, 64, 64]]),
]


def draw_record(t, keep):
    flat = t.reshape(-1).to(torch.float32)
    vals = [float(v) for v in flat.tolist()]
    return {
        "shape": list(t.shape),
        "n": len(vals),
        "crc32": zlib.crc32(flat.numpy().astype("<f4").tobytes()),
        "head": vals[:keep],
        "tail": vals[-keep:] if len(vals) > keep else [],
        "sum": sum(vals),
    }


def main():
    out = {"torch": torch.__version__, "cases": []}
    for name, seed, shapes in CASES:
        g = torch.Generator("cpu").manual_seed(seed)
        # The first draw keeps 64 values at each end, later ones 16: the
        # CRC already checks every value.
        draws = [draw_record(torch.randn(s, generator=g), 64 if i == 0 else 16) for i, s in enumerate(shapes)]
        out["cases"].append({"name": name, "seed": seed, "draws": draws})
    json.dump(out, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
