"""ddcl-incrt accelerated: the PyTorch implementation, differentially tested against ``reference``.

Empty until the accelerated issue lands; it exists so the layout and packaging are final.
"""
