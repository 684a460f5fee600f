"""Person-layer warp (issue 14): only the person moves; outside the two person regions the photo is untouched; the
inpaint mask covers everything SD must invent; bad input gets errors that say what was wrong."""
from __future__ import annotations

import pytest
import torch
from harness.photos import as_tensor, photos

from reposedm_core.data.synthetic import render_people
from reposedm_core.photo import fill_background, person_layer_warp, select_person_masks

H, W = 128, 96


@pytest.fixture(scope="module")
def person():
    out = render_people([4], [21], H, W)
    return out["image"], out["keypoints"], out["mask"].float()


def _shifted(kp: torch.Tensor, dx: float) -> torch.Tensor:
    out = kp.clone()
    out[..., 0] += dx * (kp[..., 2] > 0)
    return out


def test_a_shifted_pose_moves_the_person_and_only_the_person(person):
    image, kp, mask = person
    out = person_layer_warp(image, kp, _shifted(kp, 20), mask, feather=2)
    outside = ~out.region.expand(-1, 3, -1, -1)
    assert outside.any() and torch.equal(out.composite[outside], image[outside])
    ys, xs = torch.nonzero(mask[0, 0] > 0.5, as_tuple=True)
    cx = lambda m: float((torch.nonzero(m[0, 0] > 0.5)[:, 1].float()).mean())
    assert abs(cx(out.alpha) - cx(mask) - 20) < 2
    core = (mask[0, 0] > 0.5) & (torch.arange(W) < W - 20)           # body pixels that stay in the frame
    moved = out.composite[0][:, ys, (xs + 20).clamp(max=W - 1)][:, core[ys, xs]]
    assert (moved - image[0][:, ys, xs][:, core[ys, xs]]).abs().mean() < 0.06


def test_the_inpaint_mask_covers_the_vacated_and_the_disoccluded_pixels(person):
    image, kp, mask = person
    # the person's left part out of the frame, then moved right: the hidden body comes into view
    cut = 24
    image, mask, kp = image[..., cut:], mask[..., cut:], _shifted(kp, -cut)
    out = person_layer_warp(image, kp, _shifted(kp, 30), mask, feather=2)
    assert out.vacated.any() and out.disoccluded.any()
    assert bool((out.inpaint[out.vacated | out.disoccluded] >= 0.5).all())
    was_person = mask > 0.5
    assert bool((out.vacated | (out.alpha > 0.5) | ~was_person).all())    # no source pixel left behind
    assert float(out.inpaint.gt(0.5).float().mean()) < 0.6
    # the disoccluded body starts from the person's colours around it, not from the background fill
    hole = out.disoccluded.expand(-1, 3, -1, -1)
    person_colour = (out.composite * (out.alpha > 0.5)).sum((2, 3)) / (out.alpha > 0.5).sum((2, 3))
    to_person = (out.composite[hole].view(3, -1) - person_colour.view(3, 1)).abs().mean()
    to_background = (out.composite[hole] - out.background[hole]).abs().mean()
    assert to_background > 0.05 and to_person < to_background, (float(to_person), float(to_background))


def test_on_a_real_photo_the_background_is_exact_and_blazepose_reads_the_target_pose():
    """Same person, two frames of the sports2d demo video: the first frame's person moved into the second's pose;
    BlazePose (which did not produce the composite) reads it nearer the target pose than the source pose."""
    from reposedm_core.estimator import load_blazepose

    est = load_blazepose()
    crop = lambda name: as_tensor(photos()[name])[..., 350:, 500:1500]
    image, later = crop("sports80"), crop("sports120")
    with torch.no_grad():
        people, target = est.people(image), est.people(later).keypoints[:1]
        source = people.keypoints[:1]
        out = person_layer_warp(image, source, target, select_person_masks(people, source))
        read = est.predict(out.composite).keypoints
    outside = ~out.region.expand(-1, 3, -1, -1)
    assert torch.equal(out.composite[outside], image[outside]) and float(out.region.float().mean()) < 0.25
    both = (read[..., 2] > 0) & (target[..., 2] > 0) & (source[..., 2] > 0)
    err = lambda a: float(((a[..., :2] - read[..., :2]).norm(dim=-1) * both).sum() / both.sum())
    assert both.sum() >= 8 and err(target) < 0.3 * err(source), (err(target), err(source))
    assert bool((out.inpaint[out.vacated | out.disoccluded] >= 0.5).all())


def test_fill_background_keeps_known_pixels_and_fills_holes_from_around():
    image = torch.full((1, 3, 40, 30), 0.2)
    image[..., 15:] = 0.8
    image[..., 0, 0] = 0.5
    known = torch.ones(1, 1, 40, 30, dtype=torch.bool)
    known[..., 10:30, 8:22] = False
    filled = fill_background(image, known)
    assert torch.equal(filled[known.expand(-1, 3, -1, -1)], image[known.expand(-1, 3, -1, -1)])
    hole = filled[..., 10:30, 8:22]
    assert hole.min() >= 0.2 - 1e-6 and hole.max() <= 0.8 + 1e-6
    assert hole[..., :3].mean() < 0.4 and hole[..., -3:].mean() > 0.6          # each side from its own side


@pytest.mark.parametrize("case, message", [
    ("mask_size", "person_mask must be"),
    ("few_joints", "needs at least 4"),
    ("batch", "target_pose must be"),
    ("no_person", "no person in the person mask"),
])
def test_bad_input_says_what_was_wrong(person, case, message):
    image, kp, mask = person
    target = _shifted(kp, 5)
    if case == "mask_size":
        mask = mask[..., :-8]
    elif case == "few_joints":
        target = target.clone()
        target[:, 3:, 2] = 0
    elif case == "batch":
        target = target.expand(2, -1, -1)
    elif case == "no_person":
        mask = torch.zeros_like(mask)
    with pytest.raises(ValueError, match=message):
        person_layer_warp(image, kp, target, mask)
