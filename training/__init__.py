"""The training runtime both engines plug into: the loop, run records, checkpoints, data, files."""
