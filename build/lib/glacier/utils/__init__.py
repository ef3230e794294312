"""Small utilities: atomic file writes, fingerprints, runtime tuning."""
