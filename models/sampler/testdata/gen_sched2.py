#!/usr/bin/python3
"""Writes sched2.json: reference schedules and trajectories for the
schedulers and options added after sched.json (heun, unipc, dpmpp_2m_sde,
and the manifest's karras, spacing and eta options).

Unlike gen_sched.py, which writes the equations out, this script runs
diffusers' own scheduler classes (EulerDiscreteScheduler, HeunDiscrete-
Scheduler, UniPCMultistepScheduler, DPMSolverMultistepScheduler,
DDIMScheduler) from a diffusers checkout, so the reference is diffusers'
arithmetic itself. The scheduler modules need only torch and numpy plus a
few helpers of the diffusers package (its configuration decorator, an
output dataclass, randn_tensor); those helpers import much more
(huggingface_hub, packaging, ...), so this script registers small
stand-ins for them before it loads the scheduler files by path. The
stand-ins do what the originals do for these classes: record the
constructor's arguments as the config, and draw noise with torch.randn on
the CPU generator.

The model outputs fed to the steps are plain numbers (torch.randn with
fixed seeds), not a model: the tests check scheduler arithmetic only.

Needs PyTorch and numpy (Debian: python3-torch) and a diffusers checkout.
Run from this folder:
DIFFUSERS=/path/to/diffusers/src/diffusers /usr/bin/python3 gen_sched2.py > sched2.json
"""
import dataclasses
import enum
import functools
import importlib.util
import inspect
import json
import os
import sys
import types

import torch

SHAPE = [1, 4, 4, 4]
SD15 = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
        "num_train_timesteps": 1000, "set_alpha_to_one": False, "steps_offset": 1, "clip_sample": False}


class FrozenConfig(dict):
    """The config: a dict whose keys also read as attributes."""

    def __getattr__(self, k):
        try:
            return self[k]
        except KeyError as e:
            raise AttributeError(k) from e


class ConfigMixin:
    config_name = "scheduler_config.json"

    def register_to_config(self, **kw):
        cfg = FrozenConfig(getattr(self, "_internal_dict", {}))
        cfg.update(kw)
        self._internal_dict = cfg

    @property
    def config(self):
        return self._internal_dict


def register_to_config(init):
    sig = inspect.signature(init)

    @functools.wraps(init)
    def wrapper(self, *args, **kwargs):
        bound = sig.bind(self, *args, **kwargs)
        bound.apply_defaults()
        values = dict(bound.arguments)
        values.pop("self")
        ConfigMixin.register_to_config(self, **values)
        init(self, *args, **kwargs)

    return wrapper


class BaseOutput(dict):
    def __init__(self, *args, **kwargs):
        super().__init__()
        for f, v in zip(dataclasses.fields(self), args):
            kwargs.setdefault(f.name, v)
        for k, v in kwargs.items():
            setattr(self, k, v)
            self[k] = v

    def __getitem__(self, k):
        if isinstance(k, int):
            return list(self.values())[k]
        return dict.__getitem__(self, k)


def deprecate(*args, **kwargs):
    return None


def randn_tensor(shape, generator=None, device=None, dtype=None, layout=None):
    return torch.randn(shape, generator=generator, dtype=dtype)


class _Logger:
    def warning(self, *a, **k):
        pass

    info = debug = warn = warning


def install_stubs(root):
    pkg = types.ModuleType("diffusers")
    pkg.__path__ = [root]
    sched = types.ModuleType("diffusers.schedulers")
    sched.__path__ = [os.path.join(root, "schedulers")]
    cu = types.ModuleType("diffusers.configuration_utils")
    cu.ConfigMixin, cu.register_to_config = ConfigMixin, register_to_config
    ut = types.ModuleType("diffusers.utils")
    ut.__path__ = []
    ut.BaseOutput, ut.deprecate = BaseOutput, deprecate
    ut.is_scipy_available = lambda: False
    ut.logging = types.SimpleNamespace(get_logger=lambda name: _Logger())
    tu = types.ModuleType("diffusers.utils.torch_utils")
    tu.randn_tensor = randn_tensor
    su = types.ModuleType("diffusers.schedulers.scheduling_utils")

    class KarrasDiffusionSchedulers(enum.Enum):
        pass

    @dataclasses.dataclass
    class SchedulerOutput(BaseOutput):
        prev_sample: torch.Tensor

    class SchedulerMixin:
        pass

    su.KarrasDiffusionSchedulers, su.SchedulerOutput, su.SchedulerMixin = KarrasDiffusionSchedulers, SchedulerOutput, SchedulerMixin
    for m in (pkg, sched, cu, ut, tu, su):
        sys.modules[m.__name__] = m


def load(root, module, cls):
    name = "diffusers.schedulers." + module
    spec = importlib.util.spec_from_file_location(name, os.path.join(root, "schedulers", module + ".py"))
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return getattr(mod, cls)


CLASSES = {
    "euler": ("scheduling_euler_discrete", "EulerDiscreteScheduler", {}),
    "heun": ("scheduling_heun_discrete", "HeunDiscreteScheduler", {}),
    "unipc": ("scheduling_unipc_multistep", "UniPCMultistepScheduler", {}),
    "dpmpp_2m": ("scheduling_dpmsolver_multistep", "DPMSolverMultistepScheduler", {}),
    "dpmpp_2m_sde": ("scheduling_dpmsolver_multistep", "DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++"}),
    "ddim": ("scheduling_ddim", "DDIMScheduler", {}),
}

# label, kiln scheduler, scheduler_config.json fields, steps, strength,
# manifest options (karras, spacing, eta).
CASES = [
    ("heun sd15", "heun", SD15, 8, 1.0, {}),
    ("heun karras", "heun", SD15, 6, 1.0, {"karras": True}),
    ("heun leading v", "heun", dict(SD15, timestep_spacing="leading", prediction_type="v_prediction"), 5, 1.0, {}),
    ("heun trailing img2img", "heun", SD15, 10, 0.5, {"spacing": "trailing"}),
    ("unipc sd15", "unipc", SD15, 10, 1.0, {}),
    ("unipc 20 steps", "unipc", SD15, 20, 1.0, {}),
    ("unipc karras", "unipc", SD15, 8, 1.0, {"karras": True}),
    ("unipc trailing v", "unipc", dict(SD15, prediction_type="v_prediction"), 4, 1.0, {"spacing": "trailing"}),
    ("unipc leading img2img", "unipc", SD15, 10, 0.6, {"spacing": "leading"}),
    ("dpmpp_2m_sde sd15", "dpmpp_2m_sde", SD15, 10, 1.0, {}),
    ("dpmpp_2m_sde karras", "dpmpp_2m_sde", SD15, 8, 1.0, {"karras": True}),
    ("dpmpp_2m_sde trailing img2img", "dpmpp_2m_sde", SD15, 10, 0.5, {"spacing": "trailing"}),
    ("dpmpp_2m karras trailing option", "dpmpp_2m", SD15, 12, 1.0, {"karras": True, "spacing": "trailing"}),
    ("euler karras option", "euler", SD15, 10, 1.0, {"karras": True}),
    ("euler linspace option", "euler", dict(SD15, timestep_spacing="leading"), 10, 1.0, {"spacing": "linspace"}),
    ("ddim eta option", "ddim", SD15, 10, 1.0, {"eta": 0.3}),
    ("ddim trailing eta img2img", "ddim", SD15, 10, 0.7, {"eta": 0.5, "spacing": "trailing"}),
    # The scheduler of models/testmodels' optimum folder, for the end-to-end
    # tests (e2e_test.go), which compare the timesteps the UNet is called at
    # and its first input.
    ("e2e heun", "heun", dict(SD15, timestep_spacing="leading", prediction_type="epsilon"), 3, 1.0, {}),
    ("e2e unipc", "unipc", dict(SD15, timestep_spacing="leading", prediction_type="epsilon"), 3, 1.0, {}),
    ("e2e dpmpp_2m_sde", "dpmpp_2m_sde", dict(SD15, timestep_spacing="leading", prediction_type="epsilon"), 3, 1.0, {}),
    ("e2e heun karras trailing", "heun", dict(SD15, timestep_spacing="leading", prediction_type="epsilon"), 3, 1.0,
     {"karras": True, "spacing": "trailing"}),
]


def vals(t):
    return [float(v) for v in t.reshape(-1).tolist()]


def run(root, label, name, raw, steps, strength, opt):
    module, cls, extra = CLASSES[name]
    Cls = load(root, module, cls)
    accepted = inspect.signature(Cls.__init__).parameters
    cfg = {k: v for k, v in raw.items() if k in accepted}
    cfg.update(extra)
    if "karras" in opt:
        cfg["use_karras_sigmas"] = opt["karras"]
    if "spacing" in opt:
        cfg["timestep_spacing"] = opt["spacing"]
    s = Cls(**cfg)
    s.set_timesteps(steps)
    order = getattr(s, "order", 1)
    init = min(int(steps * strength), steps)
    t_start = max(steps - init, 0)
    ts = s.timesteps[t_start * order:]
    if hasattr(s, "set_begin_index"):
        s.set_begin_index(t_start * order)
    x0 = torch.randn(SHAPE, generator=torch.Generator("cpu").manual_seed(1))
    if strength < 1.0:
        noise = torch.randn(SHAPE, generator=torch.Generator("cpu").manual_seed(2))
        x = s.add_noise(x0, noise, ts[:1])
    else:
        x = x0 * s.init_noise_sigma
    start = vals(x)
    g = torch.Generator("cpu").manual_seed(5)
    scales, traj = [], []
    for k, t in enumerate(ts):
        m = torch.randn(SHAPE, generator=torch.Generator("cpu").manual_seed(100 + k))
        scales.append(float((s.scale_model_input(torch.ones(SHAPE), t)[0, 0, 0, 0]).item()))
        kw = {"generator": g} if "generator" in inspect.signature(s.step).parameters else {}
        if name == "ddim":
            kw["eta"] = opt.get("eta", 0.0)
        x = s.step(m, t, x, **kw).prev_sample
        traj.append(vals(x))
    case = {
        "label": label, "name": name, "config": raw, "steps": steps, "strength": strength,
        "karras": opt.get("karras"), "spacing": opt.get("spacing", ""), "eta": opt.get("eta", 0.0),
        "timesteps": [float(t) for t in ts.tolist()],
        "init_noise_sigma": float(s.init_noise_sigma),
        "input_scales": scales,
        "start": start,
        "trajectory": traj,
    }
    if hasattr(s, "sigmas"):
        case["sigmas"] = [float(v) for v in s.sigmas[t_start * order:].tolist()]
    return case


def main():
    root = os.environ.get("DIFFUSERS")
    if not root:
        sys.exit("set DIFFUSERS to the src/diffusers folder of a diffusers checkout")
    install_stubs(root)
    out = {"torch": torch.__version__, "diffusers": os.environ.get("DIFFUSERS_COMMIT", ""), "cases": []}
    for c in CASES:
        out["cases"].append(run(root, *c))
    json.dump(out, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
