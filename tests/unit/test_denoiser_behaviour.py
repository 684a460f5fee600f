"""The denoiser listens to the alignment, on a tiny seeded model whose zero-initialised projections are woken.

Written against the public interfaces (``RePoseModel.condition / align / sample``, ``RePoseDenoiser(x_t, t,
alignment, keep)``) and as relations, not pinned numbers, so they hold for any parametrisation of the denoiser:
the aligned features change its output; the appearance changes the conditional output and not the null (CFG)
one; ``shared_noise`` shares the initial noise; the model runs in fp16 on the CPU.
"""
from __future__ import annotations

import dataclasses

import pytest
import torch

from reposedm_core.models import RePoseModel

from harness.tiny_models import TINY, wake_zero_layers
from test_alignment_behaviour import SOURCE_POSE, TARGET_POSE, _pattern


@pytest.fixture(scope="module")
def model() -> RePoseModel:
    torch.manual_seed(0)
    m = RePoseModel(TINY).eval()
    woken = wake_zero_layers(m, std=0.2)
    assert any(name.startswith("denoiser.") for name in woken), woken  # the residual projections start at zero
    return m


def _condition(model, phase: float = 0.0):
    with torch.no_grad():
        return model.condition(_pattern(phase=phase), SOURCE_POSE, TARGET_POSE, iterations=2)


def _denoise(model, alignment, keep=None, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(1, 3, TINY.height, TINY.width, generator=gen)
    with torch.no_grad():
        return model.denoiser(x, torch.tensor([400]), alignment, keep)


def test_the_aligned_features_change_the_denoiser_output(model):
    a = _condition(model)
    out = _denoise(model, a)
    blind = dataclasses.replace(a, features=[torch.zeros_like(f) for f in a.features])
    change = (out - _denoise(model, blind)).abs().mean() / out.abs().mean()
    assert change > 0.01, change


def test_the_appearance_changes_the_conditional_output_and_not_the_null_condition(model):
    """Two source images, same poses: the conditional outputs differ; the null branch (keep = 0, the
    unconditional side of classifier-free guidance) must not see the appearance at all."""
    a, b = _condition(model), _condition(model, phase=1.0)
    cond = (_denoise(model, a) - _denoise(model, b)).abs().mean()
    drop = torch.zeros(1)
    null = (_denoise(model, a, drop) - _denoise(model, b, drop)).abs().mean()
    assert cond > 1e-3 and null <= 1e-6 and cond > 100 * null, (cond, null)


def _align(model, phases=(0.0,), **kw):
    images = (torch.cat([_pattern(phase=p) for p in phases]) + 1) / 2
    n = len(phases)
    return model.align(images, SOURCE_POSE.expand(n, -1, -1), TARGET_POSE.expand(n, -1, -1), iterations=2, **kw)


def test_sampled_images_follow_the_appearance_and_cfg_zero_ignores_it(model):
    a, b = _align(model, (0.0,)), _align(model, (1.0,))
    guided = (model.sample(a, steps=2, cfg=2.0, seed=1) - model.sample(b, steps=2, cfg=2.0, seed=1)).abs().mean()
    null = (model.sample(a, steps=2, cfg=0.0, seed=1) - model.sample(b, steps=2, cfg=0.0, seed=1)).abs().mean()
    assert guided > 1e-3 and null <= 1e-6, (guided, null)


def test_shared_noise_gives_one_initial_noise_to_the_whole_batch(model):
    a = _align(model, (0.0, 0.0))                      # two identical items
    seen = []
    shared = model.sample(a, steps=2, cfg=1.0, seed=3, shared_noise=True,
                          callback=lambda d: seen.append(d["x"].clone()) if d["i"] == 0 else None)
    own = model.sample(a, steps=2, cfg=1.0, seed=3)
    assert torch.equal(seen[0][0], seen[0][1])         # x_T
    assert torch.allclose(shared[0], shared[1], atol=1e-5)
    assert (own[0] - own[1]).abs().mean() > 1e-3       # without it each item draws its own noise
    with pytest.raises(ValueError, match="shared_noise"):
        model.sample(a, steps=1, seed=[1, 2], shared_noise=True)


@pytest.mark.parametrize("scheduler", ["ddpm", "ddim"])
def test_an_items_own_seed_gives_the_same_image_in_any_batch(model, scheduler):
    """Per-item seeds (sharded evaluation): an image depends on its own seed only, also with the stochastic ddpm
    scheduler, whose per-step noise used to come from the first item's seed."""
    a = _align(model, (0.0, 0.0))
    alone = model.sample(_align(model, (0.0,)), steps=3, cfg=1.0, seed=[5], scheduler=scheduler)
    pair = model.sample(a, steps=3, cfg=1.0, seed=[9, 5], scheduler=scheduler)
    assert torch.allclose(pair[1], alone[0], atol=1e-5)
    assert (pair[0] - pair[1]).abs().mean() > 1e-3


def test_fp16_on_the_cpu_runs_and_stays_close_to_fp32(model):
    """LoadRePoseModel loads the model in fp16 on a GPU that ComfyUI deems fp16-capable; the same code runs in
    fp16 on the CPU (torch >= 2.1), so the CPU can check it."""
    half = RePoseModel(TINY).eval()
    half.load_state_dict(model.state_dict())
    half = half.to(torch.float16)
    a32, a16 = _align(model), _align(half)
    assert a16.inner.features[0].dtype == torch.float16
    x32 = model.sample(a32, steps=2, cfg=2.0, seed=0)
    x16 = model.sample(a16, steps=2, cfg=2.0, seed=0)
    assert x16.dtype == torch.float32 and torch.isfinite(x16).all()
    assert (x16 - x32).abs().max() < 0.05, (x16 - x32).abs().max()
