"""The shipped training configs load, name their dataset, and build the model they describe."""
from __future__ import annotations

import pytest

from reposedm_core.models import RePoseModel
from reposedm_core.train.config import CONFIGS, load_config

FRAMES = {"demo": (96, 64), "deepfashion_256": (256, 176), "deepfashion_512": (512, 352), "market_128": (128, 64)}


@pytest.mark.parametrize("name", sorted(FRAMES))
def test_config_builds_its_model_at_the_papers_frame(name):
    model_cfg, train_cfg = load_config(name)
    assert (model_cfg.height, model_cfg.width) == FRAMES[name]
    assert train_cfg.data == {"demo": "synthetic", "market_128": "market"}.get(name, "deepfashion")
    assert train_cfg.batch % train_cfg.accumulate == 0
    model = RePoseModel(model_cfg)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    if name != "demo":
        assert f"{params:.1f} M" in (CONFIGS / f"{name}.json").read_text().replace("136 M", "136.0 M")


def test_unknown_config_lists_the_known_names():
    with pytest.raises(ValueError, match="known names: .*deepfashion_256"):
        load_config("deepfashion_1024")
