"""Claims of SPEC §4. Record types live in ``records``; the assembled ``REGISTRY`` in ``registry``
(kept out of this ``__init__`` so that invariants and falsifiers can import the record types without
importing every claim family)."""
