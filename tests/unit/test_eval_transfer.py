"""``python -m reposedm_core.eval transfer`` (the README's tables) on a tiny model, and quality floors of the
shipped demo model measured with the same code."""
from __future__ import annotations

import argparse
import re

import pytest
import torch

from reposedm_core.data.synthetic import SyntheticWorld

from harness.tiny_models import write_tiny_repose


def _rows(report: str) -> dict[str, list[str]]:
    out = {}
    for line in report.splitlines():
        if line.startswith("| ") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            out[cells[0]] = cells[1:]
    return out


def test_transfer_report_has_the_warp_row_grid_rows_and_x0_curve(tmp_path):
    from reposedm_core.eval.__main__ import main

    path = write_tiny_repose(tmp_path / "tiny.safetensors")
    out = tmp_path / "report.md"
    main(["transfer", "--model", f"tiny={path}", "--pairs", "2", "--steps", "2", "--batch", "2", "--no-fid",
          "--x0-curve", "--grid", "ddim:1,2", "--reader", "small", "--split", "val", "--out", str(out)])
    report = out.read_text()
    assert "Synthetic val split, 2 pairs" in report
    rows = _rows(report)
    for name in ("tiny: warp preview", "tiny, ddim, cfg 1", "tiny, ddim, cfg 2", "tiny", "ground truth images"):
        assert name in rows, (name, sorted(rows))
    truth = rows["ground truth images"]
    assert float(truth[0]) == 1.0 and float(truth[1]) == 0.0 and float(truth[3]) == pytest.approx(1.0)
    curve = rows["tiny"]  # the last "tiny" row is the x0-curve table's (same name)
    assert len(curve) == 6 and all(0 < float(v) <= 1 for v in curve)
    assert re.search(r"\| model \| t=100 \| t=300 \| t=500 \| t=700 \| t=900 \| warp preview \|", report)


def test_a_no_alignment_ablation_gets_no_warp_preview_row(tmp_path):
    """The ablation (use_alignment=false) has no warp -- its preview would be a zero image scored as a warp."""
    import dataclasses

    from reposedm_core.eval.__main__ import main
    from reposedm_core.models import RePoseModel
    from reposedm_core.models.io import save_model

    from harness.tiny_models import TINY

    full = write_tiny_repose(tmp_path / "full.safetensors")
    torch.manual_seed(0)
    ablation = save_model(RePoseModel(dataclasses.replace(TINY, use_alignment=False)), tmp_path / "noalign.safetensors",
                          extra={"tiny": True}, dtype=torch.float32)
    out = tmp_path / "report.md"
    main(["transfer", "--model", f"full={full}", "--model", f"noalign={ablation}", "--pairs", "2", "--steps", "2",
          "--batch", "2", "--no-fid", "--x0-curve", "--reader", "small", "--split", "val", "--out", str(out)])
    report = out.read_text()
    rows = _rows(report)
    assert "full: warp preview" in rows and "noalign: warp preview" not in rows, sorted(rows)
    assert re.search(r"\| noalign \| [^\n]*\| no warp \|", report)   # the x0 table's warp column
    assert re.search(r"\| full \| ([0-9.]+ \| ){5}[0-9.]+ \|", report)


def test_high_frequency_energy_sees_speckle_and_blur():
    from reposedm_core.eval.transfer import high_frequency_energy

    img = SyntheticWorld("val", height=48, width=32, prior="natural").pairs([0])["target_image"]
    speckled = (img + 0.1 * torch.randn(img.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    blurred = torch.nn.functional.avg_pool2d(img, 3, 1, 1, count_include_pad=False)
    base = high_frequency_energy(img)
    assert high_frequency_energy(speckled) > 1.5 * base > 1.5 * high_frequency_energy(blurred)


def test_shipped_demo_model_quality_floors():
    """Measured with this code on the shipped model (8 test pairs, 10 steps of the default sampler, ddpm at cfg 1,
    temperature 0.5 above t = 300): warp preview SSIM 0.747, result 0.776 (48 pairs / 20 steps: 0.763 / 0.795; the
    model shipped in stop 29 0.746 / 0.773 here, 0.762 / 0.790 there; the one shipped in stops 26-28 0.744 / 0.765
    here, at temperature 1 0.747, and 0.758 / 0.788 there, at temperature 1 0.768; the model before it, at
    temperature 1, 0.742 / 0.744 here, 0.756 / 0.764 there). The result beats its own warp (by 0.029 here; at
    temperature 1 it was only held within 0.05 of it) -- an older demo model (v prediction of the whole image) fell
    0.10 below it with this sampler (0.623 vs 0.727) and 0.16 with its own (dpmpp_2m, cfg 2), the model shipped
    before it, with its warp offset dropped, 0.15 below (0.586)."""
    from reposedm_core.eval.transfer import generate, image_metrics, warp_previews
    from reposedm_core.models import load_model
    from reposedm_core.sampling import add_sampler_arguments

    model = load_model()
    pairs = SyntheticWorld("test", height=model.config.height, width=model.config.width,
                           prior="natural").pairs(list(range(8)))
    warp = image_metrics(warp_previews(model, pairs), pairs["target_image"])["ssim"]

    parser = argparse.ArgumentParser()
    add_sampler_arguments(parser)            # every sampler default, as the command-line tools get them
    args = parser.parse_args(["--steps", "10"])
    args.batch, args.seed = 8, 0
    images, _ = generate(model, pairs, None, args)
    result = image_metrics(images, pairs["target_image"], pairs["target_mask"])
    assert warp > 0.68, warp
    assert result["ssim"] > warp, (result, warp)
