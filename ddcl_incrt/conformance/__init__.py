"""The conformance kit: tells a port author exactly where a port of DDCL-INCRT differs from the
reference, with a copy-paste reproduction of every difference (docs/porting.md).

* :mod:`ddcl_incrt.conformance.operations` — one record per operation (reference implementation,
  typed call, cases, comparator), read by every module below; loading a port;
* :mod:`ddcl_incrt.conformance.adapter` — what a Python port is and the types its operations exchange;
* :mod:`ddcl_incrt.conformance.cases` — the case generators and the encoding of every operation's
  inputs and outputs as named arrays (the language-neutral form);
* :mod:`ddcl_incrt.conformance.trajectory` — the ``trajectory`` operation on any training engine,
  through the trainer's loop body;
* :mod:`ddcl_incrt.conformance.vectors` — golden vectors and port outputs on disk (JSON manifest +
  ``.npy``, never pickled);
* :mod:`ddcl_incrt.conformance.compare` — the checks, tolerances, near-ties;
* :mod:`ddcl_incrt.conformance.report` — terminal table, JSON, Markdown, repro snippets;
* :mod:`ddcl_incrt.conformance.runner` — running the kit on an adapter or on written outputs;
* :mod:`ddcl_incrt.conformance.command` — ``ddcl-incrt conformance`` (exit codes, errors on stderr);
* :mod:`ddcl_incrt.conformance.template` — ``--template DIR``: the adapter skeleton a port starts from;
* :mod:`ddcl_incrt.conformance.properties` — the ``proved`` claims' property tests on a port;
* :mod:`ddcl_incrt.conformance.plugin` — ``pytest --ddcl-adapter=package.module:factory``;
* :mod:`ddcl_incrt.conformance.adapters` — the reference's and the accelerated path's adapters;
* :mod:`ddcl_incrt.conformance.broken` — deliberately broken adapters the kit must catch.
"""
