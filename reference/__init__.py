"""ddcl-incrt reference: float64 NumPy, the executable specification (never imports torch)."""
