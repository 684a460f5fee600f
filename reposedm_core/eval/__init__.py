"""Evaluation CLIs: ``python -m reposedm_core.eval {field,...} --help``."""
