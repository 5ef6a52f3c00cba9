"""Adapters of the two implementations this project ships: the reference (the specification, so it
defines the golden vectors) and the accelerated path (PyTorch, float64 and float32)."""
