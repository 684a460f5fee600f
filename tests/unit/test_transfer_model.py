"""The RePoseDM model on tiny seeded components: alignment, denoiser, sampler, letterbox, checkpoints, training."""
from __future__ import annotations

import json

import pytest
import torch

from reposedm_core.data.synthetic import SyntheticWorld
from reposedm_core.models import RePoseModel, load_model, save_model
from reposedm_core.models.flow import limb_flow, resize_flow, warp
from reposedm_core.models.frame import Letterbox
from reposedm_core.sampling import SCHEDULERS, make_scheduler, output_from_x0, sample, x0_from_output
from reposedm_core.utils.checkpoint import CheckpointError

from harness.tiny_models import TINY


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return RePoseModel(TINY).eval()


@pytest.fixture(scope="module")
def pair():
    return SyntheticWorld("val", height=80, width=56, prior="natural").pairs([0, 1])


def test_flow_is_identity_for_the_same_pose_and_follows_a_shift(pair):
    kp = pair["source_keypoints"]
    assert limb_flow(kp, kp, 40, 28).abs().max() < 1e-2
    shifted = kp.clone()
    shifted[..., 0] += 3 * (kp[..., 2] > 0)
    flow = limb_flow(kp, shifted, 80, 56)
    x, y = shifted[0, 1, :2].round().long().tolist()  # at the target neck the flow points 3 px back
    assert flow[0, 0, y, x] == pytest.approx(-3, abs=0.3)


def test_warp_with_zero_flow_is_identity_and_resize_scales_vectors():
    img = torch.rand(2, 3, 16, 12)
    assert torch.allclose(warp(img, torch.zeros(2, 2, 16, 12)), img, atol=1e-5)
    flow = torch.ones(1, 2, 8, 6)
    assert torch.allclose(resize_flow(flow, 16, 12), torch.full((1, 2, 16, 12), 2.0))


def test_letterbox_round_trips_images_and_poses():
    box = Letterbox(100, 50, 32, 24)
    img = torch.rand(1, 3, 100, 50)
    assert box.image_in(img).shape == (1, 3, 32, 24)
    kp = torch.tensor([[[10.0, 20.0, 1.0]] + [[0.0, 0.0, 0.0]] * 17])
    assert torch.allclose(box.pose_out(box.pose_in(kp)), kp, atol=1e-4)
    assert box.pose_in(kp)[0, 1].tolist() == [0.0, 0.0, 0.0]  # missing stays missing
    assert box.image_out(box.image_in(img)).shape == img.shape


def test_align_outputs_at_input_size_and_iterations_zero(model, pair):
    a = model.align(pair["source_image"], pair["source_keypoints"], pair["target_keypoints"], iterations=2)
    assert a.warped.shape == (2, 3, 80, 56) and 0 <= a.warped.min() and a.warped.max() <= 1
    assert len(a.inner.iterates) == 2 * 2  # every iterate of both scales is returned
    assert [f.shape[-2:] for f in a.inner.features] == [(32, 24), (16, 12), (8, 6), (4, 3)]
    a0 = model.align(pair["source_image"], pair["source_keypoints"], pair["target_keypoints"], iterations=0)
    assert a0.inner.iterates == [] and a0.warped.shape == a.warped.shape


def test_sampling_is_deterministic_and_seed_dependent(model, pair):
    a = model.align(pair["source_image"], pair["source_keypoints"], pair["target_keypoints"])
    x1 = model.sample(a, steps=3, cfg=2.0, seed=5)
    x2 = model.sample(a, steps=3, cfg=2.0, seed=5)
    x3 = model.sample(a, steps=3, cfg=2.0, seed=6)
    assert x1.shape == (2, 3, 80, 56)
    assert torch.equal(x1, x2) and not torch.equal(x1, x3)


@pytest.mark.parametrize("scheduler", sorted(SCHEDULERS))
def test_every_scheduler_runs_and_reports_each_step(model, pair, scheduler):
    a = model.align(pair["source_image"][:1], pair["source_keypoints"][:1], pair["target_keypoints"][:1])
    seen = []
    out = model.sample(a, steps=3, cfg=1.0, seed=0, scheduler=scheduler, callback=lambda d: seen.append(d["i"]))
    assert seen == [0, 1, 2] and torch.isfinite(out).all()


@pytest.mark.parametrize("scheduler", sorted(SCHEDULERS))
def test_denoise_runs_the_last_steps_of_a_longer_schedule_from_the_noised_start(model, scheduler):
    """ComfyUI's ``denoise``: at 0.5, 4 steps are the last 4 of an 8-step schedule, starting from ``init`` noised
    to the first of them; a denoiser that knows the clean image still lands on it exactly."""
    sched = make_scheduler(scheduler, dict(model.train_scheduler.config))
    truth, init, noise = torch.rand(2, 3, 8, 6) * 2 - 1, torch.rand(2, 3, 8, 6) * 2 - 1, torch.randn(2, 3, 8, 6)
    seen = []
    perfect = lambda x, t: output_from_x0(sched, truth, x, t)  # noqa: E731
    gen = torch.Generator().manual_seed(0) if scheduler == "ddpm" else None  # the stochastic one takes a generator
    out = sample(perfect, noise, sched, 4, strength=0.5, init=init, generator=gen,
                 callback=lambda d: seen.append((int(d["t"]), d["x"].clone())))
    full = make_scheduler(scheduler, dict(model.train_scheduler.config))
    full.set_timesteps(8)
    assert [t for t, _ in seen] == full.timesteps[4:].tolist()
    t0 = torch.tensor([seen[0][0]] * 2)
    assert torch.allclose(seen[0][1], model.train_scheduler.add_noise(init, noise, t0), atol=1e-6)
    assert torch.allclose(out, truth, atol=1e-3)


def test_denoise_starts_the_model_from_its_warp_and_rejects_bad_values(model, pair):
    a = model.align(pair["source_image"][:1], pair["source_keypoints"][:1], pair["target_keypoints"][:1])
    warp = a.inner.warped.flatten()
    first = {}
    for d in (1.0, 0.3):
        model.sample(a, steps=3, denoise=d, callback=lambda info, d=d: first.setdefault(d, info["x"].flatten()))
    corr = {d: float(torch.corrcoef(torch.stack([x, warp]))[0, 1]) for d, x in first.items()}
    assert corr[0.3] > 0.8 and abs(corr[1.0]) < 0.1, corr
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match=r"denoise.*\(0, 1\]"):
            model.sample(a, steps=2, denoise=bad)


def test_interrupt_stops_sampling(model, pair):
    a = model.align(pair["source_image"][:1], pair["source_keypoints"][:1], pair["target_keypoints"][:1])
    calls = []

    def interrupt():
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt("stop")

    with pytest.raises(KeyboardInterrupt):
        model.sample(a, steps=5, interrupt=interrupt)
    assert len(calls) == 2


def test_x0_and_model_output_convert_both_ways(model):
    sched = model.train_scheduler
    x, out, t = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4), torch.tensor(500)
    x0 = x0_from_output(sched, out, x, t)
    assert torch.allclose(output_from_x0(sched, x0, x, t), out, atol=1e-4)


def test_align_rejects_bad_input_with_clear_errors(model, pair):
    src, sk, tk = pair["source_image"], pair["source_keypoints"], pair["target_keypoints"]
    empty = torch.zeros_like(tk)
    with pytest.raises(ValueError, match="target_pose 0 has 0 confident joints"):
        model.align(src, sk, empty)
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        model.align(src[:, :1], sk, tk)
    with pytest.raises(ValueError, match="one pose per image"):
        model.align(src, sk[:1], tk)


def test_checkpoint_round_trip_and_errors(model, pair, tmp_path):
    path = save_model(model, tmp_path / "tiny.safetensors", dtype=torch.float32)
    again = load_model(path)
    a = model.align(pair["source_image"][:1], pair["source_keypoints"][:1], pair["target_keypoints"][:1])
    b = again.align(pair["source_image"][:1], pair["source_keypoints"][:1], pair["target_keypoints"][:1])
    assert torch.equal(model.sample(a, steps=2, seed=1), again.sample(b, steps=2, seed=1))
    truncated = tmp_path / "cut.safetensors"
    truncated.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_model(truncated)
    from safetensors.torch import save_file
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(CheckpointError, match="not a RePoseDM checkpoint"):
        load_model(foreign)
    pickle = tmp_path / "model.pth"
    torch.save(model.state_dict(), pickle)
    with pytest.raises(CheckpointError, match="never pickles"):
        load_model(pickle)


def test_training_runs_resumes_and_writes_a_loadable_model(tmp_path):
    from reposedm_core.train.__main__ import main

    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps({"model": TINY.to_dict(), "train": {"steps": 3, "batch": 2, "sample_every": 2,
                                                                   "checkpoint_every": 2, "sample_steps": 2}}))
    out = tmp_path / "run"
    main(["transfer", "--config", str(cfg), "--out", str(out)])
    assert (out / "samples" / "step_000002.png").is_file() and (out / "state.safetensors").is_file()
    lines = (out / "log.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["diffusion"] > 0
    main(["transfer", "--config", str(cfg), "--out", str(out), "--steps", "4"])  # resumes at 3
    assert load_model(out / "model.safetensors").config == TINY


def test_temperature_scales_the_ddpm_step_noise_and_nothing_else(model, pair):
    """A zero denoiser makes each ddpm step linear in x and in its drawn noise, so with the same draws the
    sample is linear in the temperature: tau 0.5 lies exactly halfway between tau 0 (no step noise) and 1; 1 is
    diffusers' own DDPMScheduler; the deterministic schedulers add no noise, so it leaves them unchanged; the steps
    at or below ``temperature_stop_t`` keep the scheduler's own noise."""
    import diffusers

    config = dict(model.train_scheduler.config)
    noise = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    zero = lambda x, t: torch.zeros_like(x)  # noqa: E731

    def run(tau, name="ddpm"):
        sched = make_scheduler(name, config, temperature=tau, temperature_stop_t=0)
        return sample(zero, noise, sched, 5, generator=torch.Generator().manual_seed(2))

    x0, x_half, x1 = run(0.0), run(0.5), run(1.0)
    assert (x1 - x0).abs().max() > 1e-2                                   # the steps do add noise
    assert torch.allclose(x_half - x0, 0.5 * (x1 - x0), atol=1e-5)
    own = diffusers.DDPMScheduler.from_config(config)
    assert torch.equal(x1, sample(zero, noise, own, 5, generator=torch.Generator().manual_seed(2)))
    assert torch.equal(run(0.5, "ddim"), run(1.0, "ddim"))
    # the steps at or below temperature_stop_t add the scheduler's own noise; every step above it the tempered
    own.set_timesteps(5)
    cool = make_scheduler("ddpm", config, temperature=0.5, temperature_stop_t=300)
    cool.set_timesteps(5)
    for t in own.timesteps:
        ratio = cool._get_variance(t) / own._get_variance(t).clamp_min(1e-30)
        assert ratio == pytest.approx(0.25 if t > 300 else 1.0), int(t)
    assert any(t > 300 for t in own.timesteps) and any(0 < t <= 300 for t in own.timesteps)
    x_half_high = sample(zero, noise, cool, 5, generator=torch.Generator().manual_seed(2))
    assert not torch.equal(x_half_high, x_half) and not torch.equal(x_half_high, x1)
    a = model.align(pair["source_image"][:1], pair["source_keypoints"][:1], pair["target_keypoints"][:1])
    cool = model.sample(a, steps=3, scheduler="ddpm", temperature=0.5)
    assert torch.equal(cool, model.sample(a, steps=3, scheduler="ddpm", temperature=0.5))   # seeded
    assert not torch.equal(cool, model.sample(a, steps=3, scheduler="ddpm", temperature=1.0))
    with pytest.raises(ValueError, match=r"temperature must be in \[0, 2\]"):
        make_scheduler("ddpm", config, temperature=-1.0)
    with pytest.raises(ValueError, match=r"temperature_stop_t must be a timestep in \[0, 1000\]"):
        make_scheduler("ddpm", config, temperature=0.5, temperature_stop_t=-1)
