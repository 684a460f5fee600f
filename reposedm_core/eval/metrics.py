"""Small metrics without extra dependencies, and the Markdown reports the evaluations write."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import torch


def auroc(negatives: torch.Tensor, positives: torch.Tensor) -> float:
    """Area under the ROC curve for scores where positives should be higher (Mann-Whitney U, ties halved)."""
    if len(negatives) == 0 or len(positives) == 0:
        return float("nan")
    scores = torch.cat([negatives, positives]).double()
    ranks = torch.empty_like(scores)
    order = scores.argsort()
    ranks[order] = torch.arange(1, len(scores) + 1, dtype=torch.float64)
    # average ranks of ties
    uniq, inverse, counts = torch.unique(scores, return_inverse=True, return_counts=True)
    if len(uniq) < len(scores):
        sums = torch.zeros(len(uniq), dtype=torch.float64).index_add_(0, inverse, ranks)
        ranks = (sums / counts)[inverse]
    rank_pos = ranks[len(negatives):].sum()
    u = rank_pos - len(positives) * (len(positives) + 1) / 2
    return float(u / (len(positives) * len(negatives)))


def markdown_table(header: list[str], rows: list[list]) -> str:
    """A GitHub-flavoured Markdown table; floats with 3 decimals."""
    fmt = lambda v: f"{v:.3f}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_report(path: str | os.PathLike, report: str, log: logging.Logger) -> Path:
    """Write an evaluation's Markdown report (folders made, one final newline) and log it with its path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report if report.endswith("\n") else report + "\n")
    log.info("%s\nwrote %s", report.rstrip("\n"), out)
    return out
