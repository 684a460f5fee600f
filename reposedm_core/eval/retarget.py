"""Evaluate pose retargeting on synthetic motions where the truth is known.

    python -m reposedm_core.eval retarget [--sequences 40] [--frames 30] [--out outputs/retarget_eval.md]

Two identities with different proportions perform the same motion (joint angles interpolated between two
held-out poses) in front of one fixed camera; the reference is the second identity in a third pose. Reported
for :func:`~reposedm_core.pose.retarget.retarget` and for the whole-skeleton scale-and-shift baseline (same
sequence-wide scale and feet anchor) in the same run: MPJPE against the second identity's true pose (torso
lengths of that identity), bone-length error against the lengths given to the reference, bone-direction error
against the driving pose (bone length: the result bone's 2D length undone of the driving's foreshortening in
that frame, i.e. times the driving bone's full length over its 2D length, against the reference length), foot
sliding (|ankle velocity - true ankle velocity|, px/frame), the pose field's
distance (valid p95 for reference), and milliseconds for a 300-frame sequence.
"""
from __future__ import annotations

import argparse
import logging
import math
import time

import torch

from ..data.synthetic.camera import NUM_CAMERA_UNIFORMS, make_camera
from ..data.synthetic.poses import sample_pose_angles
from ..data.synthetic.skeleton import NUM_SHAPE_UNIFORMS, body_shape_from_uniforms, forward_kinematics, openpose18_from_3d
from ..pose.normalize import root_and_scale
from ..pose.retarget import BONES, reference_lengths, retarget
from .metrics import markdown_table, write_report

log = logging.getLogger("reposedm.eval.retarget")


def motions(n: int, frames: int, seed: int = 31_337, height: int = 256, width: int = 176) -> dict[str, torch.Tensor]:
    """``n`` sequences: driving ``[n, T, 18, 3]`` (identity A), truth ``[n, T, 18, 3]`` (identity B, same motion),
    reference ``[n, 18, 3]`` (identity B in another pose), all through one fixed full-body camera per sequence."""
    gen = torch.Generator().manual_seed(seed)
    shape_u = torch.rand(n, 2, NUM_SHAPE_UNIFORMS, generator=gen, dtype=torch.float64).clamp(1e-6, 1 - 1e-6)
    poses = sample_pose_angles(gen, 3 * n, "natural").view(n, 3, -1)
    cam_u = torch.rand(n, NUM_CAMERA_UNIFORMS, generator=gen, dtype=torch.float64).clamp(1e-6, 1 - 1e-6)
    cam_u[:, 5] *= 0.79                                            # full-body framing
    t = torch.linspace(0, 1, frames, dtype=torch.float64)
    w = (0.5 - 0.5 * torch.cos(math.pi * t))[None, :, None]
    angles = poses[:, :1] * (1 - w) + poses[:, 1:2] * w            # [n, T, D]
    out = {}
    for key, ident, ang in (("driving", 0, angles), ("truth", 1, angles), ("reference", 1, poses[:, 2:3])):
        k = ang.shape[1]
        shape = body_shape_from_uniforms(shape_u[:, ident]).repeat_interleave(k, 0)
        joints = forward_kinematics(shape, ang.reshape(n * k, -1)).view(n, k, -1, 3)
        out[key] = joints
    first = out["driving"][:, 0]
    both = torch.maximum(out["driving"][:, 0, :, 1].amax(1), out["truth"][:, 0, :, 1].amax(1))
    frame_joints = first.clone()
    frame_joints[:, 0, 1] = both                                   # frame the taller of the two
    cam = make_camera(cam_u, frame_joints, height, width)
    for key, joints in out.items():
        k = joints.shape[1]
        pc = torch.stack([cam.to_camera(joints[:, i]) for i in range(k)], 1)
        xy = torch.stack([openpose18_from_3d(cam.project(pc[:, i])) for i in range(k)], 1).float()
        out[key] = torch.cat([xy, torch.ones_like(xy[..., :1])], -1)
    out["reference"] = out["reference"][:, 0]
    return out


def _bones(kp: torch.Tensor) -> torch.Tensor:
    a = torch.tensor([x for x, _, _ in BONES])
    b = torch.tensor([y for _, y, _ in BONES])
    return kp[..., b, :2] - kp[..., a, :2]


def baseline(driving: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Whole-skeleton scale (sequence-wide body-scale ratio) and shift (feet anchor), the usual retargeting."""
    from ..pose.normalize import root_and_body_scale
    from ..pose.retarget import _anchor_point

    _, ds, _ = root_and_body_scale(driving)
    _, rs, _ = root_and_body_scale(reference[None])
    s = float(rs[0] / ds.median())
    d_anchor, _ = _anchor_point(driving, "feet")
    r_anchor, _ = _anchor_point(reference[None], "feet")
    out = driving.clone()
    out[..., :2] = (driving[..., :2] - d_anchor[0]) * s + r_anchor[0]
    return out


def metrics(result: torch.Tensor, driving: torch.Tensor, truth: torch.Tensor, lengths: torch.Tensor) -> dict:
    _, torso, _ = root_and_scale(truth)
    mpjpe = ((result[..., :2] - truth[..., :2]).norm(dim=-1) / torso[..., None]).mean()
    # the same after removing one translation per sequence: where the reference stands in its own photo
    # says nothing about where it stood during the motion, so this isolates shape and motion
    offset = (truth[..., :2] - result[..., :2]).mean(dim=(-3, -2), keepdim=True)
    mpjpe_shape = ((result[..., :2] + offset - truth[..., :2]).norm(dim=-1) / torso[..., None]).mean()
    rb, db = _bones(result), _bones(driving)
    from ..pose.retarget import full_lengths

    # a 2D bone is foreshortened as the driving's is: its unforeshortened length is its 2D length times the
    # driving bone's full length over its 2D length in that frame; that is what must equal the reference's
    d_full = torch.stack([full_lengths(d) for d in driving]) if driving.dim() == 4 else full_lengths(driving)
    d_full = d_full[:, None] if driving.dim() == 4 else d_full
    implied = rb.norm(dim=-1) * d_full / db.norm(dim=-1).clamp_min(1e-6)
    visible = db.norm(dim=-1) > 0.05 * d_full                           # bones seen nearly end-on carry no length
    length_err = ((implied - lengths).abs() / lengths)[visible]
    cos = (rb * db).sum(-1) / (rb.norm(dim=-1) * db.norm(dim=-1)).clamp_min(1e-6)
    angle = torch.rad2deg(torch.acos(cos.clamp(-1, 1)))
    ankles = [10, 13]                                               # r_ankle, l_ankle
    v_res = result[:, 1:, ankles, :2] - result[:, :-1, ankles, :2] if result.dim() == 4 else None
    slide = float((v_res - (truth[:, 1:, ankles, :2] - truth[:, :-1, ankles, :2])).norm(dim=-1).mean()) \
        if v_res is not None else float("nan")
    return {"mpjpe": float(mpjpe), "mpjpe_aligned": float(mpjpe_shape), "length_err": float(length_err.median()), "length_err_max": float(length_err.max()),
            "angle": float(angle.median()), "slide": slide}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sequences", type=int, default=40)
    p.add_argument("--frames", type=int, default=30)
    p.add_argument("--out", default="outputs/retarget_eval.md")


def run(args: argparse.Namespace) -> None:
    from ..field import load_pose_field

    field = load_pose_field()
    data = motions(args.sequences, args.frames)
    ours, base, lengths = [], [], []
    for i in range(args.sequences):
        ours.append(retarget(data["driving"][i], data["reference"][i], field=field))
        base.append(baseline(data["driving"][i], data["reference"][i]))
        lengths.append(reference_lengths(data["reference"][i]))
    ours, base, lengths = torch.stack(ours), torch.stack(base), torch.stack(lengths)[:, None]
    rows = []
    for name, res in (("retarget (ours)", ours), ("scale and shift (baseline)", base)):
        m = metrics(res, data["driving"], data["truth"], lengths)
        fd = field.distance(res.reshape(-1, 18, 3))
        rows.append([name, m["mpjpe"], m["mpjpe_aligned"], m["length_err"], m["length_err_max"], m["angle"], m["slide"],
                     float(fd.median()), float((fd < field.valid_threshold).float().mean())])
    clean_table = clean_report(args.sequences, seed=11)
    long_seq = data["driving"][0].repeat(10, 1, 1)[:300]
    t0 = time.perf_counter()
    retarget(long_seq, data["reference"][0], field=field)
    ms = 1000 * (time.perf_counter() - t0)
    from ..pose.sequence import clean_sequence

    t0 = time.perf_counter()
    clean_sequence(long_seq, field=field)
    ms_clean = 1000 * (time.perf_counter() - t0)
    table = markdown_table(["method", "MPJPE (torso)", "MPJPE, placement removed", "bone length err (median)", "bone length err (max)",
                            "direction err (deg, median)", "foot sliding (px/frame)", "field distance (median)",
                            "share valid"], rows)
    report = (f"# Retargeting evaluation\n\n{args.sequences} synthetic motions x {args.frames} frames, two identities, "
              f"one camera; valid p95 {field.valid_threshold:.3f}.\n\n{table}\n\n## Sequence clean-up\n\n{clean_table}\n\n"
              f"300-frame sequence: retarget {ms:.0f} ms, clean {ms_clean:.0f} ms.\n")
    write_report(args.out, report, log)


def clean_protocol(n: int, seed: int = 11, frames: int = 48) -> dict[str, torch.Tensor]:
    """True motions ``truth [n, T, 18, 3]`` with jitter (4 % of the torso), 5 % dropped joints, one left/right-
    swapped and one empty frame (``noisy``), cleaned by ``clean_sequence`` (``ours``) and by a Savitzky-Golay
    filter (window 9, order 2) after the same swap fix and gap filling (``sg``); ``torso [n, T]`` pixels."""
    from scipy.signal import savgol_filter

    from ..pose.sequence import _fill, _unswap, clean_sequence
    from ..pose.skeleton import FLIP_PERMUTATION

    truth = motions(n, frames, seed=seed)["driving"]
    _, torso, _ = root_and_scale(truth.reshape(-1, 18, 3))
    torso = torso.view(n, frames)
    g = torch.Generator().manual_seed(seed)
    noisy = truth.clone()
    noisy[..., :2] += torch.randn(noisy[..., :2].shape, generator=g) * 0.04 * torso[..., None, None]
    noisy[torch.rand(noisy.shape[:3], generator=g) < 0.05] = 0
    noisy[:, frames // 2] = noisy[:, frames // 2, list(FLIP_PERMUTATION)]
    noisy[:, 2 * frames // 3] = 0
    ours = torch.stack([clean_sequence(x) for x in noisy])
    sg = []
    for x in noisy:
        f = _fill(_unswap(x), 5)
        y = f.clone()
        y[..., :2] = torch.from_numpy(savgol_filter(f[..., :2].numpy(), 9, 2, axis=0)).float()
        sg.append(y)
    return {"truth": truth, "noisy": noisy, "ours": ours, "sg": torch.stack(sg), "torso": torso}


def clean_error(x: torch.Tensor, truth: torch.Tensor, torso: torch.Tensor) -> float:
    """Mean joint error in torso lengths over the joints ``x`` reports."""
    d = (x[..., :2] - truth[..., :2]).norm(dim=-1) / torso[..., None]
    return float(d[x[..., 2] > 0].mean())


def clean_report(n: int, seed: int = 11, frames: int = 48) -> str:
    """clean_sequence vs Savitzky-Golay on :func:`clean_protocol`, as a Markdown table."""
    p = clean_protocol(n, seed, frames)
    err = {k: clean_error(p[k], p["truth"], p["torso"]) for k in ("noisy", "sg", "ours")}
    rows = [["input (noisy)", err["noisy"], float((p["noisy"][..., 2] > 0).float().mean())],
            ["Savitzky-Golay (9, 2)", err["sg"], float((p["sg"][..., 2] > 0).float().mean())],
            ["clean_sequence", err["ours"], float((p["ours"][..., 2] > 0).float().mean())]]
    return (markdown_table(["method", "MPJPE (torso)", "joints present"], rows)
            + f"\n\n{n} motions x {frames} frames; ratio to Savitzky-Golay {err['ours'] / err['sg']:.3f}.")
