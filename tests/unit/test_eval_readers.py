"""The transfer evaluation CLI grades with an independent reader: ``--reader`` reads the results' poses,
``--guide-reader`` steers the guided rows, and the report says which (and flags self-grading)."""
from __future__ import annotations

from harness.tiny_models import write_tiny_repose
from reposedm_core.eval.__main__ import main


def _run(tmp_path, *extra: str) -> str:
    model = write_tiny_repose(tmp_path / "tiny.safetensors")
    out = tmp_path / "report.md"
    main(["transfer", "--model", f"tiny={model}", "--guidance", "tiny=1", "--pairs", "2", "--steps", "2",
          "--batch", "2", "--no-fid", "--out", str(out), *extra])
    return out.read_text()


def test_default_grading_reader_is_not_the_guiding_one(tmp_path):
    text = _run(tmp_path)
    assert "Poses read by the blazepose reader; guided rows steered by the small reader." in text
    assert "self-graded" not in text
    assert "| tiny, guidance 1 |" in text and "| ground truth images |" in text


def test_same_reader_is_reported_as_self_graded(tmp_path):
    text = _run(tmp_path, "--reader", "small", "--guide-reader", "small")
    assert "(self-graded: the same reader)" in text
