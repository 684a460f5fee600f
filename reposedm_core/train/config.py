"""Training configs: a JSON file (or a name from ``reposedm_core/configs``) with "model" and "train" sections,
plus ``--set section.key=value`` overrides from the command line."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from ..models import RePoseConfig

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@dataclass
class TrainConfig:
    steps: int = 3000
    batch: int = 8
    lr: float = 2e-4
    weight_decay: float = 0.0
    warmup: int = 200
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    uncond_prob: float = 0.1        # drop the appearance condition (classifier-free guidance)
    iterations: int = 3             # alignment iterations per scale in training
    gamma: float = 0.8              # RAFT sequence-loss decay
    w_sequence: float = 1.0
    w_visibility: float = 0.1
    visibility_tau: float = 0.1
    background_weight: float = 0.1  # sequence-loss weight outside the target body (1 inside)
    seed: int = 0
    accumulate: int = 1             # micro-batches per step (gradient accumulation), per process
    amp: str = "none"               # none | bf16 | fp16 (autocast on GPU only)
    data: str = "synthetic"         # synthetic | deepfashion | market | folder (see train/data.py)
    data_root: str = ""
    prior: str = "natural"          # synthetic-world pose prior
    augment: bool = False           # photo backgrounds, colour, blur, noise, JPEG (train/augment.py)
    augment_share: float = 1.0      # with augment: the share of pairs varied (the rest as rendered)
    pose_jitter: float = 0.0        # noise on the given poses' joints, sigma in body scales (detector readings)
    init_from: str = ""             # a model file to start from (matching tensors copied; models/io.init_from)
    t_sampling: str = "uniform"     # uniform | mid_high (half the batch from t >= 0.3 T, where structure is set)
    workers: int = 0                # processes rendering batches ahead of training (0: in the training process)
    log_every: int = 10
    sample_every: int = 500
    sample_steps: int = 20
    checkpoint_every: int = 250

    def to_dict(self) -> dict:
        return asdict(self)


def _coerce(value: str, like):
    if isinstance(like, bool):
        if value.lower() in ("1", "true", "yes"):
            return True
        if value.lower() in ("0", "false", "no"):
            return False
        raise ValueError(f"expected true/false, got {value!r}")
    if isinstance(like, tuple):
        return tuple(int(v) for v in value.strip("()[] ").split(",") if v.strip())
    return type(like)(value)


def load_config(name_or_path: str, overrides: list[str] = ()) -> tuple[RePoseConfig, TrainConfig]:
    """Read a config by name (``demo`` -> reposedm_core/configs/demo.json) or path, then apply overrides."""
    path = Path(name_or_path)
    if not path.suffix:
        path = CONFIGS / f"{name_or_path}.json"
    if not path.is_file():
        known = sorted(p.stem for p in CONFIGS.glob("*.json"))
        raise ValueError(f"config {name_or_path!r} not found (looked for {path}); known names: {known}")
    data = json.loads(path.read_text())
    unknown = sorted(set(data) - {"model", "train", "comment"})
    if unknown:
        raise ValueError(f"{path.name}: unknown sections {unknown}; expected 'model' and 'train'")
    model = RePoseConfig.from_dict(data.get("model", {}))
    train_known = {f.name for f in fields(TrainConfig)}
    bad = sorted(set(data.get("train", {})) - train_known)
    if bad:
        raise ValueError(f"{path.name}: unknown train keys {bad}; known: {sorted(train_known)}")
    train = TrainConfig(**data.get("train", {}))
    for item in overrides:
        key, sep, value = item.partition("=")
        section, _, field = key.partition(".")
        target = {"model": model, "train": train}.get(section)
        if not sep or target is None or not hasattr(target, field):
            raise ValueError(f"--set {item!r}: expected model.KEY=VALUE or train.KEY=VALUE with a known KEY")
        setattr(target, field, _coerce(value, getattr(target, field)))
    return model, train
