"""Small generators of test data that follow real on-disk formats (torchgeo style)."""
