#!/usr/bin/python3
"""Writes inpaint.json: the reference for latent-blending inpainting.

It replays, in float32 torch, the denoising loop of diffusers'
StableDiffusionInpaintPipeline for a UNet of 4 input channels, in the
pipeline's order of operations:

  - the init image's posterior is sampled from the generator, scaled and
    repeated for every image; then the noise is drawn; the starting latents
    are the image latents noised to the first timestep (pure noise times
    init_noise_sigma at strength 1);
  - the mask is binarised at 0.5, brought to latent size by
    torch.nn.functional.interpolate (nearest), and the masked image's
    posterior is sampled from the generator too (the pipeline encodes it
    even when the UNet does not take it);
  - every step scales the model input, applies classifier-free guidance,
    steps the scheduler, then sets latents = (1 - mask) * image latents
    noised to the next timestep (clean after the last step) + mask * latents;
  - the latents divided by the VAE scaling factor are decoded.

For a 9-channel inpainting UNet (the cases with "unet9") it follows the
pipeline's other branch: the init image is encoded only below strength 1,
the masked image (the init image times mask < 0.5) is encoded after the
noise is drawn, the UNet's input is the scaled latents concatenated with
the mask and the masked image's latents (both doubled under guidance), and
there is no blending.

The schedulers are gen_sched.py's re-statement of diffusers' classes. The
model is kiln's generated test model, which Python cannot run: its UNet
outputs and its encoder's posterior come from a Go run, written by

    go test -run TestInpaintReference ./models/sampler -args -inpaint-inputs=/tmp/in.json

and the Go test then checks that kiln's UNet inputs at every step, and the
latents it decodes, are the ones this loop makes from those outputs (so by
induction the whole trajectory is diffusers'). Run from this folder:

    /usr/bin/python3 gen_inpaint.py /tmp/in.json > inpaint.json
"""
import copy
import json
import sys

import torch

from gen_sched import Sched

NAMES = {"euler_a": "euler_a", "euler": "euler", "ddim": "ddim", "dpmpp_2m": "dpmpp_2m"}


def add_noise_at(s, x0, noise, index):
    """The scheduler's add_noise at schedule index `index`, as diffusers'
    schedulers use their step index once the loop has started."""
    at = copy.copy(s)
    at.begin = index
    return at.add_noise(x0, noise)


def run(c):
    raw = {k: v for k, v in (c["config"] or {}).items() if not k.startswith("_")}
    s = Sched(NAMES[c["scheduler"]], raw, c["steps"], strength=c["strength"])
    g = torch.Generator("cpu").manual_seed(c["seed"])
    n, w, h = c["count"], c["width"], c["height"]
    lh, lw = h // 8, w // 8
    shape = [1, 4, lh, lw]
    unet9 = c.get("unet9", False)

    def sample(which):
        mean = torch.tensor(c[which + "mean"], dtype=torch.float32).reshape(shape)
        logvar = torch.tensor(c[which + "logvar"], dtype=torch.float32).reshape(shape)
        std = torch.exp(0.5 * torch.clamp(logvar, -30.0, 20.0))
        return c["scaling_factor"] * (mean + std * torch.randn(shape, generator=g))

    image_latents = None
    if not unet9 or c["strength"] < 1.0:
        image_latents = sample("").repeat(n, 1, 1, 1)
    noise = torch.randn([n, 4, lh, lw], generator=g)
    if c["strength"] == 1.0:
        latents = noise * s.init_sigma
    else:
        latents = add_noise_at(s, image_latents, noise, s.begin)

    mask = torch.tensor(c["mask"], dtype=torch.float32).reshape([1, 1, h, w])
    mask = torch.where(mask < 0.5, torch.zeros_like(mask), torch.ones_like(mask))
    mask = torch.nn.functional.interpolate(mask, size=(lh, lw))
    if unet9:
        masked = sample("masked_").repeat(n, 1, 1, 1)
        extra = torch.cat([mask.repeat(n, 1, 1, 1), masked], dim=1)
        if c["guidance"] > 1:
            extra = torch.cat([extra] * 2)
    else:
        sample("")  # the masked image's posterior, unused by a 4-channel UNet

    cfg = c["guidance"] > 1
    ts = s.timesteps()
    inputs = []
    for i in range(len(ts)):
        x = torch.cat([latents] * 2) if cfg else latents
        x = s.scale(x)
        if unet9:
            x = torch.cat([x, extra], dim=1)
        inputs.append([float(v) for v in x.reshape(-1).tolist()])
        out = torch.tensor(c["unet_outputs"][i], dtype=torch.float32).reshape([x.shape[0], 4, lh, lw])
        if cfg:
            u, t = out.chunk(2)
            out = u + c["guidance"] * (t - u)
        latents = s.step(out, latents, g)
        if unet9:
            continue
        proper = image_latents
        if i < len(ts) - 1:
            proper = add_noise_at(s, image_latents, noise, s.begin + i + 1)
        latents = (1 - mask) * proper + mask * latents
    z = latents / c["scaling_factor"]
    c["ref_unet_inputs"] = inputs
    c["ref_decoded"] = [[float(v) for v in z[i].reshape(-1).tolist()] for i in range(n)]
    return c


def main():
    with open(sys.argv[1]) as f:
        cases = json.load(f)
    json.dump([run(c) for c in cases], sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
