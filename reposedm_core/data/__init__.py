"""Data: the synthetic person world (``reposedm_core.data.synthetic``) and dataset readers."""
