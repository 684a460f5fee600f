"""Small shared helpers (image grids, atomic file writes)."""
