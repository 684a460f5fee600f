"""Training CLIs: ``python -m reposedm_core.train {field,...} --help``."""
