"""Data: scenes, outlines, masks, slices, splits and the training DataModule."""
