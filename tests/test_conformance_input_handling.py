"""Input handling of the kit's folders and options (an outside tester's findings).

* Writing a vector folder (``--write-inputs``, ``--regenerate``, the template's outputs example,
  :func:`write_vectors`) replaces an existing folder only when it holds exactly what the kit writes for
  that kind: a port's outputs folder with its notes and sources, an inputs folder with a notes file,
  a vector folder of another kind are refused before anything is written, naming the folder and the
  first foreign entry (they used to be replaced, the user's files lost).
* A manifest's unknown key (top level, case, array entry; a misspelt ``"fille"``) is refused naming
  the manifest and the field (it used to be ignored).
* ``--property-examples`` without ``--properties`` is refused like ``--property-seed`` (also at the
  default value), and an out-of-range ``--property-examples`` names the option, not the runner's
  ``max_examples``.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from ddcl_incrt.cli import main
from ddcl_incrt.conformance import runner, vectors
from ddcl_incrt.conformance.command import _examples_argument
from ddcl_incrt.conformance.template import OUTPUTS_EXAMPLE, write_template
from ddcl_incrt.conformance.vectors import (
    GOLDEN_DIR,
    VectorEntry,
    VectorFileError,
    check_vector_target,
    read_vectors,
    write_vectors,
)
from ddcl_incrt.exit_codes import OK, USAGE

PRIMITIVES_ONLY = "ddcl_incrt.conformance.broken:primitives_only"


@pytest.fixture(scope="module")
def golden() -> dict[str, VectorEntry]:
    return {e.case.check: e for e in read_vectors(GOLDEN_DIR, expect_kind="golden")}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder written by ``--template``: its ``outputs_example`` is the tester's starting point."""
    folder = tmp_path_factory.mktemp("template") / "t"
    write_template(folder)
    return folder


def _tree(folder: Path) -> dict[str, bytes | None]:
    """Every entry under ``folder``: a file's bytes, None for a folder."""
    return {str(p.relative_to(folder)): (None if p.is_dir() else p.read_bytes()) for p in sorted(folder.rglob("*"))}


def _one_case(tmp_path: Path, golden: dict[str, VectorEntry], kind: vectors.Kind, name: str = "v") -> Path:
    entry = golden["squared_distances/basic"]
    return write_vectors(tmp_path / name, kind, [VectorEntry(entry.case, None if kind == "inputs" else entry.outputs)])


# ==================================================================================================
# Defect 1: a folder holding what the kit did not write is never replaced
# ==================================================================================================


def test_the_testers_outputs_folder_with_notes_and_sources_survives_write_inputs(
    tmp_path: Path, template: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The tester's reproduction: an outputs example with port_notes.txt and src/main.rs given to
    --write-inputs exited 0 and the folder was an inputs folder afterwards, notes and sources gone."""
    o = tmp_path / "o"
    shutil.copytree(template / OUTPUTS_EXAMPLE, o)
    (o / "port_notes.txt").write_text("important\n", encoding="utf-8")
    (o / "src").mkdir()
    (o / "src" / "main.rs").write_text("x\n", encoding="utf-8")
    before = _tree(o)
    assert main(["conformance", "--write-inputs", str(o)]) == USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"ddcl-incrt conformance: error: --write-inputs: {o}: ")
    assert "kind 'outputs', not 'inputs'" in err[0]
    assert _tree(o) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o"]  # no temporary or moved-aside copy


@pytest.mark.parametrize(
    ("plant", "named"),
    [
        ("mynotes.txt", "mynotes.txt"),
        ("cases/squared_distances__basic/notes.txt", "cases/squared_distances__basic/notes.txt"),
        ("cases/squared_distances__basic/out.D.npy", "cases/squared_distances__basic/out.D.npy"),
        ("cases/not_a_case/x.npy", "cases/not_a_case"),
        ("src/main.rs", "src"),
    ],
    ids=["top-level file", "file in a case", "output in an inputs folder", "foreign case folder", "foreign folder"],
)
def test_an_inputs_folder_with_a_foreign_entry_is_refused_naming_it(
    tmp_path: Path, golden: dict[str, VectorEntry], capsys: pytest.CaptureFixture[str], plant: str, named: str
) -> None:
    folder = _one_case(tmp_path, golden, "inputs")
    (folder / plant).parent.mkdir(parents=True, exist_ok=True)
    (folder / plant).write_text("the user's", encoding="utf-8")
    before = _tree(folder)
    with pytest.raises(VectorFileError, match="which the kit does not write") as info:
        write_vectors(folder, "inputs", [golden["soft_assignments/basic"]])
    assert str(info.value).startswith(f"{folder}: field (directory): holds {named!r}")
    assert _tree(folder) == before
    assert main(["conformance", "--write-inputs", str(folder)]) == USAGE
    assert f"holds {named!r}" in capsys.readouterr().err
    assert _tree(folder) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v"]


def test_a_link_or_a_folder_where_the_kit_writes_a_file_is_foreign(
    tmp_path: Path, golden: dict[str, VectorEntry]
) -> None:
    folder = _one_case(tmp_path, golden, "inputs")
    array = folder / "cases" / "squared_distances__basic" / "in.Y.npy"
    kept = tmp_path / "kept.npy"
    shutil.copyfile(array, kept)
    array.unlink()
    array.symlink_to(kept)  # replacing the folder would not lose kept.npy, but the kit never writes a link
    with pytest.raises(VectorFileError, match=re.escape("holds 'cases/squared_distances__basic/in.Y.npy'")):
        check_vector_target(folder, "inputs")
    array.unlink()
    array.mkdir()
    (array / "inside.txt").write_text("x", encoding="utf-8")
    with pytest.raises(VectorFileError, match=re.escape("holds 'cases/squared_distances__basic/in.Y.npy'")):
        check_vector_target(folder, "inputs")


@pytest.mark.parametrize(
    ("written", "writing"), [("golden", "inputs"), ("inputs", "golden"), ("outputs", "inputs"), ("inputs", "outputs")]
)
def test_a_vector_folder_of_another_kind_is_refused(
    tmp_path: Path, golden: dict[str, VectorEntry], written: vectors.Kind, writing: vectors.Kind
) -> None:
    folder = _one_case(tmp_path, golden, written)
    before = _tree(folder)
    entry = golden["soft_assignments/basic"]
    with pytest.raises(VectorFileError, match=f"kind {written!r}, not {writing!r}") as info:
        write_vectors(folder, writing, [entry])
    assert str(info.value).startswith(str(folder))
    assert _tree(folder) == before


def test_a_manifest_the_kit_does_not_write_is_not_replaced(tmp_path: Path, golden: dict[str, VectorEntry]) -> None:
    """A manifest holding a key the kit never writes (the user's comment) is the user's file."""
    folder = _one_case(tmp_path, golden, "inputs")
    data = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    data["comment"] = "my run of 3 May"
    (folder / "manifest.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(VectorFileError, match=r"its manifest is not one the kit writes .*comment"):
        check_vector_target(folder, "inputs")


@pytest.mark.parametrize("kind", ["golden", "inputs", "outputs"])
def test_a_folder_of_exactly_the_kits_files_is_still_replaced(
    tmp_path: Path, golden: dict[str, VectorEntry], kind: vectors.Kind
) -> None:
    """The valid case of the checks above: each kind the kit wrote is replaced by the same kind, also
    with a file the manifest names missing (nothing is lost by replacing less)."""
    folder = _one_case(tmp_path, golden, kind)
    (folder / "cases" / "squared_distances__basic" / "in.Y.npy").unlink(missing_ok=True)
    entry = golden["soft_assignments/basic"]
    write_vectors(folder, kind, [VectorEntry(entry.case, None if kind == "inputs" else entry.outputs)])
    assert [e.case.check for e in read_vectors(folder, expect_kind=kind)] == ["soft_assignments/basic"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v"]


def test_write_inputs_replaces_its_own_folder_from_the_command_line(tmp_path: Path) -> None:
    folder = tmp_path / "inputs"
    assert main(["conformance", "--write-inputs", str(folder)]) == OK
    first = _tree(folder)
    assert main(["conformance", "--write-inputs", str(folder)]) == OK
    assert _tree(folder) == first
    read_vectors(folder, expect_kind="inputs")


def test_the_template_outputs_example_is_a_kit_written_outputs_folder(template: Path, tmp_path: Path) -> None:
    """The valid case for kind outputs: the template's example reads, and can be rewritten in place."""
    copy = tmp_path / "o"
    shutil.copytree(template / OUTPUTS_EXAMPLE, copy)
    entries = read_vectors(copy, expect_kind="outputs")
    assert check_vector_target(copy, "outputs") == copy
    write_vectors(copy, "outputs", entries)


def test_something_put_into_the_folder_while_writing_is_not_lost(
    tmp_path: Path, golden: dict[str, VectorEntry], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checked again just before the swap: a file written into the target meanwhile stays."""
    folder = _one_case(tmp_path, golden, "inputs")
    real = vectors._write_tree

    def write_and_plant(tmp: Path, *args: object) -> None:
        real(tmp, *args)  # type: ignore[arg-type]
        (folder / "late.txt").write_text("written meanwhile", encoding="utf-8")

    monkeypatch.setattr(vectors, "_write_tree", write_and_plant)
    with pytest.raises(VectorFileError, match=re.escape("holds 'late.txt'")):
        write_vectors(folder, "inputs", [golden["soft_assignments/basic"]])
    assert (folder / "late.txt").read_text(encoding="utf-8") == "written meanwhile"
    assert [e.case.check for e in read_vectors(folder)] == ["squared_distances/basic"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v"]


def test_regenerate_refuses_a_golden_folder_with_a_foreign_file_before_running_the_reference(
    tmp_path: Path,
    golden: dict[str, VectorEntry],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = _one_case(tmp_path, golden, "golden")
    (folder / "README.md").write_text("how these were made", encoding="utf-8")
    before = _tree(folder)

    def no_reference(*args: object) -> object:
        raise AssertionError("the reference ran before the folder was checked")

    monkeypatch.setattr(runner, "reference_outputs", no_reference)
    with pytest.raises(VectorFileError, match=re.escape("holds 'README.md'")):
        runner.regenerate(folder)
    monkeypatch.setattr(vectors, "GOLDEN_DIR", folder)  # what `--regenerate` writes
    assert main(["conformance", "--regenerate"]) == USAGE
    err = capsys.readouterr().err
    assert f"--regenerate: {folder}: field (directory): holds 'README.md'" in err
    assert _tree(folder) == before


def test_the_shipped_golden_folder_is_exactly_the_kits() -> None:
    """`--regenerate` may replace the committed golden vectors: they hold nothing else."""
    assert check_vector_target(GOLDEN_DIR, "golden") == GOLDEN_DIR


# ==================================================================================================
# Defect 2: a manifest's unknown keys are refused
# ==================================================================================================


def _edit_manifest(folder: Path, edit: object) -> None:
    data = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    edit(data)  # type: ignore[operator]
    (folder / "manifest.json").write_text(json.dumps(data), encoding="utf-8")


@pytest.mark.parametrize(
    ("kind", "edit", "field"),
    [
        ("golden", lambda d: d.update(comment="x"), "comment"),
        ("inputs", lambda d: d["cases"][0].update(notes="x"), r"cases\[0\]\.notes"),
        ("inputs", lambda d: d["cases"][0].update(outputs={}), r"cases\[0\]\.outputs"),
        ("outputs", lambda d: d["cases"][0].update(note="copied"), r"cases\[0\]\.note"),
        ("golden", lambda d: d["cases"][0]["inputs"]["Y"].update(fille="a.npy"), r"cases\[0\]\.inputs\.Y\.fille"),
        ("golden", lambda d: d["cases"][0]["outputs"]["D"].update(shpae=[1]), r"cases\[0\]\.outputs\.D\.shpae"),
    ],
    ids=["top level", "case", "outputs in inputs", "note in outputs", "misspelt file", "misspelt shape"],
)
def test_an_unknown_manifest_key_is_refused_naming_the_manifest_and_field(
    tmp_path: Path, golden: dict[str, VectorEntry], kind: vectors.Kind, edit: object, field: str
) -> None:
    folder = _one_case(tmp_path, golden, kind)
    read_vectors(folder, expect_kind=kind)  # the baseline: the kit's own file reads
    _edit_manifest(folder, edit)
    with pytest.raises(VectorFileError, match=rf"manifest\.json: field {field}: unknown key\(s\)") as info:
        read_vectors(folder)
    assert info.value.path == str(folder / "manifest.json")


@pytest.mark.parametrize("key", ["note", "scalars", "inputs"])
def test_an_outputs_case_carrying_the_inputs_keys_is_refused_saying_the_kit_has_them(
    tmp_path: Path, golden: dict[str, VectorEntry], key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A port that copies each case of the inputs manifest and adds its ``outputs`` meets this refusal
    first: the message says those keys are the kit's, not only which keys an outputs case has."""
    entry = golden["squared_distances/basic"]
    inputs = _one_case(tmp_path, golden, "inputs", "inputs")
    copied = json.loads((inputs / "manifest.json").read_text(encoding="utf-8"))["cases"][0][key]
    folder = _one_case(tmp_path, golden, "outputs")
    _edit_manifest(folder, lambda d: d["cases"][0].update({key: copied}))
    hint = f"(not {key}: the kit takes those from its own vectors, by check)"
    with pytest.raises(VectorFileError, match=re.escape(f"field cases[0].{key}: unknown key(s) ['{key}']")) as info:
        read_vectors(folder)
    assert hint in str(info.value)
    assert main(["conformance", "--outputs", str(folder), "--only", entry.case.check]) == USAGE
    assert hint in capsys.readouterr().err


def test_an_unknown_key_in_the_outputs_a_port_wrote_is_a_usage_error(
    tmp_path: Path, golden: dict[str, VectorEntry], capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _one_case(tmp_path, golden, "outputs")
    assert main(["conformance", "--outputs", str(folder), "--only", "squared_distances/basic"]) == OK
    _edit_manifest(folder, lambda d: d["cases"][0]["outputs"]["D"].update(fille="elsewhere.npy"))
    assert main(["conformance", "--outputs", str(folder), "--only", "squared_distances/basic"]) == USAGE
    assert "field cases[0].outputs.D.fille: unknown key(s) ['fille']" in capsys.readouterr().err


def test_an_outputs_case_with_a_misspelt_key_gets_no_hint_about_copied_keys(
    tmp_path: Path, golden: dict[str, VectorEntry]
) -> None:
    folder = _one_case(tmp_path, golden, "outputs")
    _edit_manifest(folder, lambda d: d["cases"][0].update(ouputs={}))
    with pytest.raises(VectorFileError, match=re.escape("field cases[0].ouputs: unknown key(s) ['ouputs']")) as info:
        read_vectors(folder)
    assert "the kit takes those" not in str(info.value)


def test_every_file_the_kit_writes_still_reads(tmp_path: Path, template: Path) -> None:
    read_vectors(GOLDEN_DIR, expect_kind="golden")
    read_vectors(runner.write_inputs(tmp_path / "inputs"), expect_kind="inputs")
    read_vectors(template / OUTPUTS_EXAMPLE, expect_kind="outputs")


# ==================================================================================================
# Defects 3 and 4: --property-examples
# ==================================================================================================


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["--property-examples", "5"], "--property-examples: only with --properties"),
        (["--property-examples", "10"], "--property-examples: only with --properties"),  # the default value
        (["--property-seed", "0"], "--property-seed: only with --properties"),  # the default value
    ],
)
def test_a_property_option_without_properties_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], named: str
) -> None:
    out = tmp_path / "r.json"
    code = main(
        ["conformance", "--adapter", PRIMITIVES_ONLY, "--only", "mean_entropy/basic", *extra, "--json", str(out)]
    )
    assert code == USAGE
    assert named in capsys.readouterr().err
    assert not out.exists()


def test_property_examples_with_properties_is_used(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    args = ["conformance", "--adapter", PRIMITIVES_ONLY, "--only", "mean_entropy/basic", "--properties"]
    assert main([*args, "--only-property", "D1", "--property-examples", "3", "--json", str(out)]) == OK
    (p,) = json.loads(out.read_text(encoding="utf-8"))["properties"]
    assert (p["claim"], p["status"], p["examples"], p["seed"]) == ("D1", "pass", 3, 0)


@pytest.mark.parametrize("examples", [str(2**63), "100000000000000000000000", "0", "-1", "1.5"])
def test_a_bad_property_examples_names_the_option(examples: str, capsys: pytest.CaptureFixture[str]) -> None:
    """2**63 and beyond used to pass the parser and be refused by the runner naming max_examples."""
    with pytest.raises(SystemExit) as exit_:
        main(["conformance", "--adapter", PRIMITIVES_ONLY, "--properties", "--property-examples", examples])
    assert exit_.value.code == USAGE
    err = capsys.readouterr().err
    assert "argument --property-examples: " in err
    assert "max_examples" not in err


def test_the_largest_property_examples_is_accepted() -> None:
    assert _examples_argument(str(2**63 - 1)) == 2**63 - 1
    assert _examples_argument("1") == 1
