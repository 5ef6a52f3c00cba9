"""``ddcl-incrt conformance --template DIR``: the files a port starts from.

* ``DIR/port_adapter.py``: a Python adapter skeleton generated from the registry
  (:data:`ddcl_incrt.conformance.operations.REGISTRY`): one method per operation with its reference
  implementation's signature (jaxtyping array annotations written as the kit's ``F64``) and docstring,
  the operation's encoded inputs and outputs, and a body that raises ``NotImplementedError``; the
  ``capabilities`` it declares (every operation: delete the ones the port does not implement) and the
  ``factory`` the kit calls. Unfilled, it fails the kit (nothing is implemented).
* ``DIR/outputs_example/``: a minimal outputs directory for a port in any language: the cases of one
  operation (``squared_distances``), with the reference's own outputs in the place of a port's, in
  the format the kit reads (docs/porting.md); ``--outputs DIR/outputs_example`` passes.
* ``DIR/README.md``: what the two are and the commands to run.

Nothing existing is overwritten: if any of the three exists, nothing is written.
"""

from __future__ import annotations

import inspect
import keyword
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ddcl_incrt.conformance.operations import REGISTRY, Operation

ADAPTER_FILE = "port_adapter.py"
OUTPUTS_EXAMPLE = "outputs_example"
README_FILE = "README.md"
EXAMPLE_OPERATION = "squared_distances"
_LINE = 88  # the usual line length of a port author's formatter (black, ruff)

_JAXTYPING_ARRAY = re.compile(r"""(?:Float64|Float|Int64|Int|Shaped)\[np\.ndarray,\s*(['"])[^'"]*\1\]""")
_BUILTIN_NAMES = frozenset({"float", "int", "str", "bool", "tuple", "list", "dict", "None"})
# names that are aliases rather than classes (no __module__ to import them from)
_ALIAS_MODULES = {"F64": "ddcl_incrt.conformance.adapter", "I64": "ddcl_incrt.conformance.adapter"}


def _annotation(text: str) -> str:
    """A reference annotation as the template writes it: jaxtyping arrays as the kit's ``F64`` (float64,
    the boundary's dtype; the shapes are in the docstring's inputs and outputs)."""
    return _JAXTYPING_ARRAY.sub("F64", text)


def _signature(fn: Callable[..., Any]) -> tuple[str, list[str]]:
    """``(self, a: T, ...) -> R`` of ``fn`` with annotations rewritten, and the annotations' text."""
    sig = inspect.signature(fn)
    params = ["self"]
    texts: list[str] = []
    for p in sig.parameters.values():
        if p.kind not in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.POSITIONAL_ONLY):
            raise ValueError(f"{fn.__qualname__}: parameter {p.name!r} is not positional; the kit calls positionally")
        ann = _annotation(str(p.annotation)) if p.annotation is not inspect.Parameter.empty else "Any"
        texts.append(ann)
        params.append(f"{p.name}: {ann}")
    ret = _annotation(str(sig.return_annotation)) if sig.return_annotation is not inspect.Signature.empty else "Any"
    texts.append(ret)
    one_line = f"({', '.join(params)}) -> {ret}"
    if len(f"    def {fn.__name__}{one_line}:") <= _LINE:
        return one_line, texts
    return "(\n" + "".join(f"        {p},\n" for p in params) + f"    ) -> {ret}", texts


def _imports(names_by_op: dict[str, set[str]]) -> list[str]:
    """``from module import A, B`` lines for every name the annotations use, found where the reference
    implementation found it (a class's own module; the kit's array aliases from its adapter module)."""
    by_module: dict[str, set[str]] = {}
    for op_name, names in names_by_op.items():
        globs = next(op for op in REGISTRY if op.name == op_name).reference.__globals__
        for name in names:
            if name == "Any":  # an unannotated parameter
                by_module.setdefault("typing", set()).add("Any")
                continue
            if name in _BUILTIN_NAMES or keyword.iskeyword(name):
                continue
            if name in _ALIAS_MODULES:
                by_module.setdefault(_ALIAS_MODULES[name], set()).add(name)
                continue
            module = getattr(globs.get(name), "__module__", None)
            if not isinstance(module, str):
                raise ValueError(f"operation {op_name}: annotation name {name!r} cannot be imported in the template")
            by_module.setdefault(module, set()).add(name)
    std = sorted(m for m in by_module if m.split(".")[0] in ("collections", "typing"))
    own = sorted(m for m in by_module if m not in std)
    lines = [f"from {m} import {', '.join(sorted(by_module[m]))}" for m in std]
    return [*lines, "", *[f"from {m} import {', '.join(sorted(by_module[m]))}" for m in own]]


def _docstring(text: str, indent: str) -> str:
    if '"""' in text:
        raise ValueError(f"a docstring holds triple quotes: {text[:60]!r}")
    prefix = "r" if "\\" in text else ""
    body = "\n".join((indent + line) if line.strip() else "" for line in text.splitlines())
    return f'{indent}{prefix}"""{body.lstrip()}\n{indent}"""'


def _method(op: Operation[Any]) -> tuple[str, list[str]]:
    sig, texts = _signature(op.reference)
    doc = inspect.getdoc(op.reference) or op.name
    inputs = op.inputs.replace("see below", "docs/porting.md, Encodings, trajectory inputs")
    doc += f"\n\nInputs (encoded): {inputs}.\nOutputs (encoded): {op.outputs}.\nCompared: {op.compare.holds}."
    lines = [
        f"    def {op.name}{sig}:",
        _docstring(doc, " " * 8),
        f'        raise NotImplementedError("{op.name}: not implemented yet")',
    ]
    return "\n".join(lines), texts


def adapter_source() -> str:
    """The text of ``port_adapter.py``: the adapter skeleton, from the registry."""
    methods: list[str] = []
    names_by_op: dict[str, set[str]] = {}
    last_group = ""
    for op in REGISTRY:
        if op.group != last_group:
            methods.append(f"    # {op.group} {'-' * (94 - len(op.group))}")
            last_group = op.group
        text, annotations = _method(op)
        methods.append(text)
        methods.append("")
        names_by_op[op.name] = {n for a in annotations for n in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", a)}
    caps = "\n".join(f'            "{op.name}",' for op in REGISTRY)
    module = Path(ADAPTER_FILE).stem
    header = f'''"""A conformance adapter for a port of DDCL-INCRT (generated by ``ddcl-incrt conformance --template``).

Fill in each method: its docstring is the reference implementation's (the operation's meaning) followed
by the operation's encoded inputs and outputs and how the kit compares them; its signature is how the
kit calls it (arrays are float64 NumPy arrays at the boundary, configurations and states the
reference's frozen dataclasses: docs/porting.md, "The dataclasses a port fills"). Delete from
``capabilities`` every operation the port does not implement (it is then reported "not covered");
an operation left there whose method still raises NotImplementedError fails the run. Then, from the
folder that holds this file:

    ddcl-incrt conformance --adapter {module}:factory [--json report.json] [--markdown report.md]

Examples: ddcl_incrt/conformance/adapters/reference.py (every method is the registry's reference
implementation, ddcl_incrt.conformance.operations.REGISTRY) and adapters/accelerated.py (PyTorch).
"""

from __future__ import annotations

'''
    body = [
        "",
        "",
        "class PortAdapter:",
        '    """The port: one method per operation of the kit (ddcl_incrt.conformance.operations.REGISTRY)."""',
        "",
        '    name = "my-port 0.1 (float64)"  # shown in the report',
        "    # the operations this port implements; delete those it does not",
        "    capabilities = frozenset(",
        "        {",
        caps,
        "        }",
        "    )",
        "    # a port computing in float32 declares its tolerances (docs/porting.md, Tolerances):",
        "    # tolerances = ddcl_incrt.conformance.compare.TolerancePolicy(dtype='float32')",
        "",
        *methods,
        "",
        "def factory() -> PortAdapter:",
        f'    """What the kit calls: ``--adapter {module}:factory``."""',
        "    return PortAdapter()",
        "",
    ]
    return header + "\n".join(_imports(names_by_op)) + "\n" + "\n".join(body)


def _readme(folder: Path) -> str:
    module = Path(ADAPTER_FILE).stem
    return f"""# Starting a port of DDCL-INCRT

Written by `ddcl-incrt conformance --template {folder}`; the kit and its formats are documented in
docs/porting.md of ddcl-incrt.

- `{ADAPTER_FILE}`: a Python adapter skeleton, one method per operation of the kit, each raising
  `NotImplementedError`. Fill in the methods, delete from `capabilities` what the port does not
  implement, then run (from this folder):

      ddcl-incrt conformance --adapter {module}:factory

  Unfilled, it fails: every declared operation raises `NotImplementedError` (nothing is implemented).
- `{OUTPUTS_EXAMPLE}/`: a minimal outputs directory for a port in any language: the cases of
  `{EXAMPLE_OPERATION}`, holding the reference's own outputs where a port writes its own. Check it with

      ddcl-incrt conformance --outputs {OUTPUTS_EXAMPLE}

  and get every case's inputs with `ddcl-incrt conformance --write-inputs DIR`.
"""


def write_template(folder: str | Path) -> list[Path]:
    """Write the adapter skeleton, the outputs example and a README into ``folder`` (created if
    missing); the paths written. Refuses (``ValueError`` naming the path, nothing written) when
    ``folder`` is not a folder or any of the three already exists."""
    from ddcl_incrt.conformance.runner import golden
    from ddcl_incrt.conformance.vectors import VectorEntry, write_vectors

    root = Path(folder)
    if os.path.lexists(root) and not root.is_dir():
        raise ValueError(f"--template {root}: exists and is not a folder; nothing was written")
    targets = [root / ADAPTER_FILE, root / OUTPUTS_EXAMPLE, root / README_FILE]
    existing = [str(t) for t in targets if os.path.lexists(t)]
    if existing:
        raise ValueError(
            f"--template {root}: {', '.join(existing)} already exist(s); the template never overwrites a file, "
            "nothing was written: give a new folder"
        )
    source = adapter_source()
    compile(source, str(root / ADAPTER_FILE), "exec")  # a template that does not parse is the kit's bug
    entries = [VectorEntry(e.case, e.outputs) for e in golden() if e.case.operation == EXAMPLE_OPERATION]
    root.mkdir(parents=True, exist_ok=True)
    example = write_vectors(root / OUTPUTS_EXAMPLE, "outputs", entries, port="the reference (an example)")
    (root / ADAPTER_FILE).write_text(source, encoding="utf-8")
    (root / README_FILE).write_text(_readme(root), encoding="utf-8")
    return [root / ADAPTER_FILE, example, root / README_FILE]


__all__ = ["ADAPTER_FILE", "EXAMPLE_OPERATION", "OUTPUTS_EXAMPLE", "README_FILE", "adapter_source", "write_template"]
