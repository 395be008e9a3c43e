#!/usr/bin/python3
"""Writes sched.json: reference schedules and trajectories for the Go
scheduler tests.

The formulas follow diffusers' scheduler classes operation by operation on
float32 torch tensors (EulerDiscreteScheduler, EulerAncestralDiscrete-
Scheduler, DDIMScheduler, DPMSolverMultistepScheduler with its defaults,
LCMScheduler), written out here from their published equations so that the
Go code, which folds each step into one linear combination, is checked
against the straightforward form. The model outputs fed to the steps are
plain numbers (torch.randn with fixed seeds), not a model: the tests check
scheduler arithmetic only.

Needs PyTorch and numpy (Debian: python3-torch). Run from this folder:
/usr/bin/python3 gen_sched.py > sched.json
"""
import json
import math
import sys

import numpy as np
import torch

SHAPE = [1, 4, 4, 4]
SD15 = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
        "num_train_timesteps": 1000, "set_alpha_to_one": False, "steps_offset": 1, "clip_sample": False}

DEFAULTS = {
    "common": dict(num_train_timesteps=1000, beta_start=0.0001, beta_end=0.02, beta_schedule="linear",
                   prediction_type="epsilon", timestep_spacing="linspace", steps_offset=0,
                   use_karras_sigmas=False, final_sigmas_type="zero"),
    "ddim": dict(clip_sample=True, set_alpha_to_one=True, timestep_spacing="leading", clip_sample_range=1.0),
    "lcm": dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", original_inference_steps=50,
                clip_sample=False, set_alpha_to_one=True, timestep_spacing="leading", timestep_scaling=10.0,
                clip_sample_range=1.0),
}


def config(name, raw):
    c = dict(DEFAULTS["common"])
    c.update(DEFAULTS.get(name, {}))
    c.update({k: v for k, v in raw.items() if v is not None})
    return c


def alphas_cumprod(c):
    T = c["num_train_timesteps"]
    if c["beta_schedule"] == "linear":
        betas = torch.linspace(c["beta_start"], c["beta_end"], T, dtype=torch.float32)
    elif c["beta_schedule"] == "scaled_linear":
        betas = torch.linspace(c["beta_start"] ** 0.5, c["beta_end"] ** 0.5, T, dtype=torch.float32) ** 2
    else:
        f = lambda t: math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2
        betas = torch.tensor([min(1 - f((i + 1) / T) / f(i / T), 0.999) for i in range(T)], dtype=torch.float32)
    return torch.cumprod(1.0 - betas, dim=0)


def sigma_to_t(sigma, log_sigmas):
    log_sigma = np.log(np.maximum(sigma, 1e-10))
    dists = log_sigma - log_sigmas[:, np.newaxis]
    low = np.cumsum((dists >= 0), axis=0).argmax(axis=0).clip(max=log_sigmas.shape[0] - 2)
    lo, hi = log_sigmas[low], log_sigmas[low + 1]
    w = np.clip((lo - log_sigma) / (lo - hi), 0, 1)
    return ((1 - w) * low + w * (low + 1)).reshape(np.shape(sigma))


def karras(sigma_min, sigma_max, n):
    ramp = np.linspace(0, 1, n)
    lo, hi = sigma_min ** (1 / 7.0), sigma_max ** (1 / 7.0)
    return (hi + ramp * (lo - hi)) ** 7.0


class Sched:
    def __init__(self, name, raw, steps, strength=1.0, eta=0.0):
        self.name, self.c, self.eta = name, config(name, raw), eta
        c = self.c
        T = c["num_train_timesteps"]
        self.ac = alphas_cumprod(c)
        train = np.array(((1 - self.ac) / self.ac) ** 0.5)
        self.begin = 0
        if name in ("euler", "euler_a"):
            sp = c["timestep_spacing"]
            if sp == "linspace":
                ts = np.linspace(0, T - 1, steps, dtype=np.float32)[::-1].copy()
            elif sp == "leading":
                ts = (np.arange(0, steps) * (T // steps)).round()[::-1].copy().astype(np.float32) + c["steps_offset"]
            else:
                ts = np.arange(T, 0, -T / steps).round().copy().astype(np.float32) - 1
            sig = np.interp(ts, np.arange(0, len(train)), train)
            if name == "euler" and c["use_karras_sigmas"]:
                sig = karras(sig[-1].item(), sig[0].item(), steps)
                ts = np.array([sigma_to_t(s, np.log(train)) for s in sig])
            self.sigmas = torch.from_numpy(np.concatenate([sig, [0.0]]).astype(np.float32))
            self.ts = torch.from_numpy(ts.astype(np.float32))
            m = self.sigmas.max()
            self.init_sigma = m if sp in ("linspace", "trailing") else (m ** 2 + 1) ** 0.5
        elif name == "ddim":
            sp = c["timestep_spacing"]
            if sp == "linspace":
                ts = np.linspace(0, T - 1, steps).round()[::-1].copy().astype(np.int64)
            elif sp == "leading":
                ts = (np.arange(0, steps) * (T // steps)).round()[::-1].copy().astype(np.int64) + c["steps_offset"]
            else:
                ts = np.round(np.arange(T, 0, -T / steps)).astype(np.int64) - 1
            self.ts = torch.from_numpy(ts)
            self.final_ac = torch.tensor(1.0) if c["set_alpha_to_one"] else self.ac[0]
            self.init_sigma = 1.0
            self.steps = steps
        elif name == "dpmpp_2m":
            sp = c["timestep_spacing"]
            if sp == "linspace":
                ts = np.linspace(0, T - 1, steps + 1).round()[::-1][:-1].copy().astype(np.int64)
            elif sp == "leading":
                ts = (np.arange(0, steps + 1) * (T // (steps + 1))).round()[::-1][:-1].copy().astype(np.int64) + c["steps_offset"]
            else:
                ts = np.arange(T, 0, -T / steps).round().copy().astype(np.int64) - 1
            if c["use_karras_sigmas"]:
                sig = karras(np.flip(train)[-1].item(), np.flip(train)[0].item(), steps)
                ts = np.array([sigma_to_t(s, np.log(train)) for s in sig]).round()
            else:
                sig = np.interp(ts, np.arange(0, len(train)), train)
            last = 0 if c["final_sigmas_type"] == "zero" else (((1 - self.ac[0]) / self.ac[0]) ** 0.5).item()
            self.sigmas = torch.from_numpy(np.concatenate([sig, [last]]).astype(np.float32))
            self.ts = torch.from_numpy(ts).to(torch.int64)
            self.init_sigma = 1.0
            self.outputs = [None, None]
            self.lower = 0
        else:  # lcm
            orig = c["original_inference_steps"]
            k = T // orig
            origin = np.asarray(list(range(1, int(orig * strength) + 1))) * k - 1
            origin = origin[::-1].copy()
            idx = np.floor(np.linspace(0, len(origin), num=steps, endpoint=False)).astype(np.int64)
            self.ts = torch.from_numpy(origin[idx])
            self.final_ac = torch.tensor(1.0) if c["set_alpha_to_one"] else self.ac[0]
            self.init_sigma = 1.0
            self.steps = steps
        if name != "lcm":
            init = min(int(steps * strength), steps)
            self.begin = max(steps - init, 0)
        self.i = self.begin

    def timesteps(self):
        return self.ts[self.begin:]

    def scale(self, x):
        if self.name in ("euler", "euler_a"):
            s = self.sigmas[self.i]
            return x / ((s ** 2 + 1) ** 0.5)
        return x

    def add_noise(self, x0, noise):
        if self.name in ("euler", "euler_a"):
            return x0 + noise * self.sigmas[self.begin]
        if self.name == "dpmpp_2m":
            s = self.sigmas[self.begin]
            a = 1 / ((s ** 2 + 1) ** 0.5)
            return a * x0 + s * a * noise
        a = self.ac[self.ts[self.begin]]
        return a ** 0.5 * x0 + (1 - a) ** 0.5 * noise

    def step(self, m, x, g):
        name, c, i = self.name, self.c, self.i
        pt = c["prediction_type"]
        if name in ("euler", "euler_a"):
            s = self.sigmas[i]
            if pt == "epsilon":
                x0 = x - s * m
            elif pt == "v_prediction":
                x0 = m * (-s / (s ** 2 + 1) ** 0.5) + (x / (s ** 2 + 1))
            else:
                x0 = m
            if name == "euler":
                d = (x - x0) / s
                out = x + d * (self.sigmas[i + 1] - s)
            else:
                sf, st = self.sigmas[i], self.sigmas[i + 1]
                up = (st ** 2 * (sf ** 2 - st ** 2) / sf ** 2) ** 0.5
                down = (st ** 2 - up ** 2) ** 0.5
                d = (x - x0) / s
                out = x + d * (down - s)
                out = out + torch.randn(m.shape, generator=g) * up
        elif name == "ddim":
            t = self.ts[i].item()
            pt_ = t - c["num_train_timesteps"] // self.steps
            at = self.ac[t]
            ap = self.ac[pt_] if pt_ >= 0 else self.final_ac
            bt = 1 - at
            if pt == "epsilon":
                x0, eps = (x - bt ** 0.5 * m) / at ** 0.5, m
            elif pt == "sample":
                x0 = m
                eps = (x - at ** 0.5 * x0) / bt ** 0.5
            else:
                x0 = at ** 0.5 * x - bt ** 0.5 * m
                eps = at ** 0.5 * m + bt ** 0.5 * x
            if c["clip_sample"]:
                x0 = x0.clamp(-c["clip_sample_range"], c["clip_sample_range"])
            var = ((1 - ap) / bt) * (1 - at / ap)
            std = self.eta * var ** 0.5
            out = ap ** 0.5 * x0 + (1 - ap - std ** 2) ** 0.5 * eps
            if self.eta > 0:
                out = out + std * torch.randn(m.shape, generator=g)
        elif name == "dpmpp_2m":
            def vp(s):
                a = 1 / ((s ** 2 + 1) ** 0.5)
                return a, s * a
            a_s, s_s = vp(self.sigmas[i])
            if pt == "epsilon":
                x0 = (x - s_s * m) / a_s
            elif pt == "v_prediction":
                x0 = a_s * x - s_s * m
            else:
                x0 = m
            self.outputs = [self.outputs[1], x0]
            last = i == len(self.ts) - 1
            lower_final = last and (len(self.ts) < 15 or c["final_sigmas_type"] == "zero")
            a_t, s_t = vp(self.sigmas[i + 1])
            lam = lambda a, s: torch.log(a) - torch.log(s)
            h = lam(a_t, s_t) - lam(a_s, s_s)
            if self.lower < 1 or lower_final:
                out = (s_t / s_s) * x - (a_t * (torch.exp(-h) - 1.0)) * x0
            else:
                a_p, s_p = vp(self.sigmas[i - 1])
                h0 = lam(a_s, s_s) - lam(a_p, s_p)
                r0 = h0 / h
                d0, d1 = x0, (1.0 / r0) * (x0 - self.outputs[0])
                out = (s_t / s_s) * x - (a_t * (torch.exp(-h) - 1.0)) * d0 - 0.5 * (a_t * (torch.exp(-h) - 1.0)) * d1
            self.lower = min(self.lower + 1, 2)
        else:  # lcm
            t = self.ts[i].item()
            last = i == len(self.ts) - 1
            pt_ = t if last else self.ts[i + 1].item()
            at, ap = self.ac[t], self.ac[pt_]
            scaled = t * c["timestep_scaling"]
            c_skip = 0.25 / (scaled ** 2 + 0.25)
            c_out = scaled / (scaled ** 2 + 0.25) ** 0.5
            if pt == "epsilon":
                x0 = (x - (1 - at).sqrt() * m) / at.sqrt()
            elif pt == "sample":
                x0 = m
            else:
                x0 = at.sqrt() * x - (1 - at).sqrt() * m
            if c["clip_sample"]:
                x0 = x0.clamp(-c["clip_sample_range"], c["clip_sample_range"])
            den = c_out * x0 + c_skip * x
            if not last:
                out = ap.sqrt() * den + (1 - ap).sqrt() * torch.randn(m.shape, generator=g)
            else:
                out = den
        self.i += 1
        return out


def vals(t):
    return [float(v) for v in t.reshape(-1).tolist()]


CASES = [
    ("euler sd15 leading", "euler", dict(SD15, timestep_spacing="leading"), 20, {}),
    ("euler sd15 default spacing", "euler", SD15, 20, {}),
    ("euler trailing turbo", "euler", dict(SD15, timestep_spacing="trailing"), 4, {}),
    ("euler karras v", "euler", dict(SD15, use_karras_sigmas=True, prediction_type="v_prediction"), 10, {}),
    ("euler sample img2img", "euler", dict(SD15, prediction_type="sample"), 20, {"strength": 0.5}),
    ("euler_a linspace", "euler_a", SD15, 8, {}),
    ("euler_a leading img2img", "euler_a", dict(SD15, timestep_spacing="leading"), 10, {"strength": 0.7}),
    ("ddim sd15", "ddim", SD15, 10, {}),
    ("ddim trailing eta v clip", "ddim", dict(SD15, timestep_spacing="trailing", prediction_type="v_prediction", clip_sample=True), 4, {"eta": 0.5}),
    ("ddim cosine sample linspace img2img", "ddim", {"beta_schedule": "squaredcos_cap_v2", "prediction_type": "sample", "timestep_spacing": "linspace"}, 10, {"strength": 0.75}),
    ("dpmpp_2m sd15", "dpmpp_2m", SD15, 20, {}),
    ("dpmpp_2m karras", "dpmpp_2m", dict(SD15, use_karras_sigmas=True), 12, {}),
    ("dpmpp_2m leading v", "dpmpp_2m", dict(SD15, timestep_spacing="leading", prediction_type="v_prediction"), 6, {}),
    ("dpmpp_2m trailing img2img", "dpmpp_2m", dict(SD15, timestep_spacing="trailing"), 10, {"strength": 0.3}),
    ("lcm 4 steps", "lcm", {"original_inference_steps": 50}, 4, {}),
    ("lcm img2img", "lcm", dict(SD15, original_inference_steps=50, timestep_spacing="trailing"), 6, {"strength": 0.6}),
    ("euler linear defaults", "euler", {}, 7, {}),
]


def main():
    out = {"torch": torch.__version__, "sd15": {}, "cases": []}
    ac = alphas_cumprod(config("euler", SD15))
    train = ((1 - ac) / ac) ** 0.5
    out["sd15"] = {"sigma_max": train.max().item(), "sigma_min": train.min().item(),
                   "alphas_cumprod_0": ac[0].item(), "alphas_cumprod_999": ac[-1].item()}
    for label, name, raw, steps, opt in CASES:
        strength = opt.get("strength", 1.0)
        s = Sched(name, raw, steps, strength=strength, eta=opt.get("eta", 0.0))
        g = torch.Generator("cpu").manual_seed(5)
        x0 = torch.randn(SHAPE, generator=torch.Generator("cpu").manual_seed(1))
        if strength < 1.0:
            noise = torch.randn(SHAPE, generator=torch.Generator("cpu").manual_seed(2))
            x = s.add_noise(x0, noise)
        else:
            x = x0 * s.init_sigma
        start = vals(x)
        scales, firsts = [], None
        for k, t in enumerate(s.timesteps()):
            m = torch.randn(SHAPE, generator=torch.Generator("cpu").manual_seed(100 + k))
            scales.append(float(s.scale(torch.ones(1)).item()))
            x = s.step(m, x, g)
            if k == 0:
                firsts = vals(x)
        case = {
            "label": label, "name": name, "config": raw, "steps": steps,
            "strength": strength, "eta": opt.get("eta", 0.0),
            "timesteps": [float(t) for t in s.timesteps().tolist()],
            "init_noise_sigma": float(s.init_sigma),
            "input_scales": scales,
            "start": start[:8],
            "after_first": firsts,
            "final": vals(x),
        }
        if name in ("euler", "euler_a", "dpmpp_2m"):
            case["sigmas"] = [float(v) for v in s.sigmas[s.begin:].tolist()]
        out["cases"].append(case)
    # LCM's timestep_cond: diffusers' get_guidance_scale_embedding.
    out["guidance_embedding"] = []
    for guidance, dim in ((8.0, 256), (1.5, 7)):
        w = torch.tensor(guidance - 1).repeat(1) * 1000.0
        half = dim // 2
        e = torch.log(torch.tensor(10000.0)) / (half - 1)
        e = torch.exp(torch.arange(half, dtype=torch.float32) * -e)
        e = w.to(torch.float32)[:, None] * e[None, :]
        e = torch.cat([torch.sin(e), torch.cos(e)], dim=1)
        if dim % 2 == 1:
            e = torch.nn.functional.pad(e, (0, 1))
        out["guidance_embedding"].append({"guidance": guidance, "dim": dim, "values": vals(e)})
    json.dump(out, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
