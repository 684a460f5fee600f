"""Retargeting: a driving pose (or sequence) re-drawn with the bone lengths of the reference person.

    out = retarget(driving, reference)          # driving [T, 18, 3] or [18, 3], reference [18, 3] -> [T, 18, 3]

Each bone of the OpenPose-18 tree (rooted at the neck) takes the reference's length and the driving pose's
direction, walked from the root outward. A 2D bone is a projection: the driving sequence's foreshortening is
kept by scaling each driving bone by ``reference length / the driving bone's full length`` (its longest
appearance in the sequence, or its body-implied length when that is longer). A bone the reference does not show -- or shows much shorter than its
body implies (foreshortened) -- takes the length implied by the reference's body scale and typical adult
proportions. The figure is scaled by one sequence-wide factor (no per-frame jumps of scale) and placed so that
its feet (or hips, or neck: ``anchor``) follow the driving pose's, mapped into the reference canvas. With a pose
field, frames that leave the manifold are projected back onto it and the bone lengths re-imposed.
"""
from __future__ import annotations

from typing import Any

import torch

from .normalize import root_and_body_scale
from .skeleton import JOINT_INDEX as J
from .validate import check_keypoints

# (parent, child, typical length in torso lengths), parents before children; measured on the synthetic
# skeleton's bodies at rest (see normalize.BODY_SEGMENTS).
BONES: tuple[tuple[int, int, float], ...] = (
    (J["neck"], J["r_shoulder"], 0.307), (J["neck"], J["l_shoulder"], 0.307),
    (J["r_shoulder"], J["r_elbow"], 0.578), (J["r_elbow"], J["r_wrist"], 0.466),
    (J["l_shoulder"], J["l_elbow"], 0.578), (J["l_elbow"], J["l_wrist"], 0.466),
    (J["neck"], J["r_hip"], 1.013), (J["r_hip"], J["r_knee"], 0.741), (J["r_knee"], J["r_ankle"], 0.683),
    (J["neck"], J["l_hip"], 1.013), (J["l_hip"], J["l_knee"], 0.741), (J["l_knee"], J["l_ankle"], 0.683),
    (J["neck"], J["nose"], 0.465), (J["nose"], J["r_eye"], 0.086), (J["nose"], J["l_eye"], 0.086),
    (J["r_eye"], J["r_ear"], 0.231), (J["l_eye"], J["l_ear"], 0.231),
)
_NAMES = {(a, b): k for k, (a, b, _) in enumerate(BONES)}
_FLIP = {J[f"r_{n}"]: J[f"l_{n}"] for n in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle", "eye", "ear")}
_FLIP.update({v: k for k, v in list(_FLIP.items())})
_PAIRS = tuple((k, _NAMES[(_FLIP.get(a, a), _FLIP.get(b, b))]) for k, (a, b, _) in enumerate(BONES)
               if b in _FLIP and k < _NAMES[(_FLIP.get(a, a), _FLIP.get(b, b))])
ANCHORS = ("feet", "hips", "neck")
SCALES = ("reference", "driving")
FORESHORTENED = 1.0   # a reference bone shorter than this share of its implied length is treated as hidden


def reference_lengths(reference: torch.Tensor) -> torch.Tensor:
    """Bone lengths ``[len(BONES)]`` in reference pixels: observed where the bone is visible and not
    foreshortened, else implied by the body scale and :data:`BONES`' proportions."""
    _, scale, valid = root_and_body_scale(reference[None])
    if not bool(valid[0]):
        raise ValueError("the reference pose needs at least 2 distinct visible joints to give a body scale")
    present = reference[:, 2] > 0
    out = []
    for a, b, ratio in BONES:
        implied = ratio * float(scale[0])
        seen = float((reference[a, :2] - reference[b, :2]).norm()) if present[a] and present[b] else 0.0
        out.append(seen if seen >= FORESHORTENED * implied else implied)
    return _symmetric(torch.tensor(out, dtype=reference.dtype))


def _symmetric(lengths: torch.Tensor) -> torch.Tensor:
    """Left and right bones of one person are equally long; a 2D view only shortens: take the longer of each
    pair (``[..., K]``)."""
    out = lengths.clone()
    for i, j in _PAIRS:
        out[..., i] = out[..., j] = torch.maximum(lengths[..., i], lengths[..., j])
    return out


def full_lengths(poses: torch.Tensor) -> torch.Tensor:
    """Unforeshortened bone lengths ``[len(BONES)]`` of the person of a sequence ``[T, 18, 3]``: each bone's
    90th-percentile 2D length over the frames, or its length implied by the median body scale if longer."""
    _, scale, valid = root_and_body_scale(poses)
    body = float(scale[valid].median()) if valid.any() else 1.0
    out = []
    for a, b, ratio in BONES:
        seen = (poses[:, a, 2] > 0) & (poses[:, b, 2] > 0)
        obs = (poses[seen, a, :2] - poses[seen, b, :2]).norm(dim=-1)
        top = float(torch.quantile(obs, 0.9)) if len(obs) else 0.0
        out.append(max(top, FORESHORTENED * ratio * body))
    return _symmetric(torch.tensor(out, dtype=poses.dtype))


def _redraw(driving: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Walk the tree: root at the driving neck, each bone its driving direction at the given length (``[K]``,
    or per frame ``[T, K]``)."""
    out = torch.zeros_like(driving)
    out[:, J["neck"]] = driving[:, J["neck"]]
    for k, (a, b, _) in enumerate(BONES):
        d = driving[:, b, :2] - driving[:, a, :2]
        unit = d / d.norm(dim=-1, keepdim=True).clamp_min(1e-6)
        ok = (driving[:, a, 2] > 0) & (driving[:, b, 2] > 0) & (out[:, a, 2] > 0)
        xy = out[:, a, :2] + unit * (lengths[:, k, None] if lengths.dim() == 2 else lengths[k])
        out[:, b] = torch.where(ok[:, None], torch.cat([xy, driving[:, b, 2:]], -1), out[:, b])
    return out


def _anchor_point(kp: torch.Tensor, anchor: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Per frame (x, y) of the anchor and whether it exists: feet = centre x of the ankles at the lowest ankle's
    y (the ground line); hips = mid-hip; neck = neck."""
    if anchor == "neck":
        return kp[:, J["neck"], :2], kp[:, J["neck"], 2] > 0
    if anchor == "hips":
        ok = (kp[:, J["r_hip"], 2] > 0) & (kp[:, J["l_hip"], 2] > 0)
        return (kp[:, J["r_hip"], :2] + kp[:, J["l_hip"], :2]) / 2, ok
    ankles = kp[:, [J["r_ankle"], J["l_ankle"]]]
    seen = ankles[..., 2] > 0
    x = (ankles[..., 0] * seen).sum(-1) / seen.sum(-1).clamp_min(1)
    y = torch.where(seen, ankles[..., 1], torch.full_like(ankles[..., 1], -1e9)).amax(-1)
    return torch.stack([x, y], -1), seen.any(-1)


def retarget(driving: Any, reference: Any, *, anchor: str = "feet", scale: str = "reference",
             field=None) -> torch.Tensor:
    """The driving pose(s) with the reference person's bone lengths, in the reference canvas.

    Args:
        driving: ``[T, 18, 3]`` or ``[18, 3]`` pixels of the driving canvas (a frame with no joints stays empty).
        reference: ``[18, 3]`` pixels of the reference canvas (the person in the source image).
        anchor: ``"feet"`` (the feet follow the driving's ground line), ``"hips"`` or ``"neck"``.
        scale: ``"reference"`` (the figure has the reference's size) or ``"driving"`` (the driving's size).
        field: a :class:`~reposedm_core.field.PoseField`; frames it calls broken are repaired, then the bone
            lengths are re-imposed. None skips the projection.

    Returns:
        ``[T, 18, 3]`` in reference pixels; joints missing in the driving pose stay missing; confidence is the
        driving's.
    """
    drv = check_keypoints(driving, "driving").float()
    ref = check_keypoints(reference, "reference").float()
    if drv.dim() == 2:
        drv = drv[None]
    if drv.dim() != 3 or ref.dim() != 2:
        raise ValueError(f"driving must be [T, 18, 3] or [18, 3] and reference [18, 3], got {tuple(drv.shape)} "
                         f"and {tuple(ref.shape)}")
    if anchor not in ANCHORS or scale not in SCALES:
        raise ValueError(f"anchor must be one of {ANCHORS} and scale one of {SCALES}, got {anchor!r}, {scale!r}")
    if int((ref[:, 2] > 0).sum()) < 4:
        raise ValueError(f"the reference pose shows {int((ref[:, 2] > 0).sum())} joints; at least 4 are needed "
                         "to measure the person's proportions")
    lengths = reference_lengths(ref)
    live = (drv[..., 2] > 0).sum(-1) >= 2
    if not live.any():
        return torch.zeros_like(drv)
    # one sequence-wide map from the driving canvas to the reference canvas
    _, d_scale, d_ok = root_and_body_scale(drv[live])
    _, r_scale, _ = root_and_body_scale(ref[None])
    s_map = float(r_scale[0] / d_scale[d_ok].median()) if d_ok.any() else 1.0
    if scale == "driving":      # the driving's size in pixels: no canvas scaling, bones scaled to its body
        lengths = lengths * float(d_scale[d_ok].median() / r_scale[0])
        s_map = 1.0
    # per frame: the driving bone's own 2D length (its foreshortening) times the proportion change
    drv_len = (drv[..., [b for _, b, _ in BONES], :2] - drv[..., [a for a, _, _ in BONES], :2]).norm(dim=-1)
    per_frame = drv_len * (lengths / full_lengths(drv[live]))
    body = _redraw(drv, per_frame)
    body = _project(body, per_frame, field)
    # placement: the anchor follows the driving's, mapped with the sequence-wide scale; the first frame that
    # shows the anchor goes where the reference's own anchor is
    d_anchor, d_has = _anchor_point(drv, anchor)
    r_anchor, r_has = _anchor_point(ref[None], anchor)
    b_anchor, b_has = _anchor_point(body, anchor)
    if not d_has.any() or not b_has.any():          # no anchor anywhere: fall back to the neck
        d_anchor, d_has = _anchor_point(drv, "neck")
        r_anchor, r_has = _anchor_point(ref[None], "neck")
        b_anchor, b_has = _anchor_point(body, "neck")
    first = int(torch.nonzero(d_has)[0])
    origin = r_anchor[0] if r_has[0] else ref[ref[:, 2] > 0, :2].mean(0)
    target = origin + (d_anchor - d_anchor[first]) * s_map
    shift = torch.where((d_has & b_has)[:, None], target - b_anchor, torch.zeros_like(target))
    out = body.clone()
    out[..., :2] = (body[..., :2] + shift[:, None]) * (body[..., 2:] > 0)
    return out * live[:, None, None]


def _project(body: torch.Tensor, lengths: torch.Tensor, field) -> torch.Tensor:
    """Frames the field calls broken: repaired, then redrawn with the repaired directions and the same lengths."""
    if field is None:
        return body
    ok = (body[..., 2] > 0).sum(-1) >= 2
    if not ok.any():
        return body
    d = torch.zeros(len(body))
    d[ok] = field.distance(body[ok]).cpu()
    bad = ok & (d > field.valid_threshold)
    if not bad.any():
        return body
    fixed = field.repair(body[bad])
    out = body.clone()
    redrawn = _redraw(fixed, lengths[bad])
    out[bad] = redrawn + (body[bad][:, J["neck"]] - redrawn[:, J["neck"]]).unsqueeze(1) * (redrawn[..., 2:] > 0)
    return out
