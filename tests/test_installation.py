"""What an installation carries and finds: the wheel ships every document (the spec first) where
``ddcl_incrt.installation.docs_dir`` looks for it, and a foreign module shadowing one of the generic
top-level names (``reference``, ...) is refused naming both places instead of failing obscurely."""

from __future__ import annotations

import fnmatch
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

from ddcl_incrt import installation
from ddcl_incrt.installation import DOCS_DATA_DIR, doc_names, docs_dir, foreign_package

ROOT = Path(__file__).resolve().parents[1]


def _tracked_docs() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z", "docs"], cwd=ROOT, capture_output=True, check=True).stdout
    return sorted(n for n in out.decode().split("\0") if n)


def _shipped_by(data_files: dict[str, list[str]], path: str) -> str | None:
    """Where pyproject's data-files put ``path`` (a repository path), or None when no glob takes it."""
    for target, patterns in data_files.items():
        if any(fnmatch.fnmatch(path, p) and path.count("/") == p.count("/") for p in patterns):
            return f"{target}/{Path(path).name}"
    return None


def test_every_tracked_document_is_shipped_as_a_data_file() -> None:
    data_files = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["data-files"]
    tracked = _tracked_docs()
    assert "docs/spec.md" in tracked
    missing = [p for p in tracked if _shipped_by(data_files, p) is None]
    assert missing == [], f"pyproject.toml's data-files do not ship {missing}"
    assert _shipped_by(data_files, "docs/spec.md") == f"{DOCS_DATA_DIR.as_posix()}/spec.md"
    # the matcher fails on a document in a folder no glob names
    assert _shipped_by(data_files, "docs/new-folder/guide.md") is None


@pytest.mark.slow
def test_the_built_wheel_carries_the_docs(tmp_path: Path) -> None:
    """``pip wheel`` on a copy of the tracked tree: the wheel holds every tracked document under the
    data directory that docs_dir searches, and the golden vectors."""
    pytest.importorskip("setuptools", reason="building a wheel without build isolation needs setuptools")
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    src = tmp_path / "src"
    for name in filter(None, listed.decode().split("\0")):
        if (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    cmd = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(src)]
    subprocess.run([*cmd, "-w", str(tmp_path / "wheel")], check=True, capture_output=True, timeout=300)
    (wheel,) = (tmp_path / "wheel").glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    data = f"ddcl_incrt-{version}.data/data/{DOCS_DATA_DIR.as_posix()}/"
    shipped = sorted(n.removeprefix(data) for n in names if n.startswith(data))
    assert shipped == sorted(p.removeprefix("docs/") for p in _tracked_docs())
    assert "ddcl_incrt/conformance/vectors/v1/manifest.json" in names
    assert {n.split("/")[0] for n in names if "/" in n and ".dist-info" not in n and ".data" not in n} == {
        "ddcl_incrt",
        "reference",
        "training",
        "accelerated",
        "proofs_check",
    }


def test_docs_dir_finds_the_checkout_then_the_installed_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert docs_dir() == ROOT / "docs"
    assert "spec" in doc_names(docs_dir())
    assert "studies/cluster" in doc_names(docs_dir())
    # An installed wheel: no checkout next to the package, the docs under the prefix's data directory.
    monkeypatch.setattr(installation, "_HERE", tmp_path / "site-packages" / "ddcl_incrt")
    with pytest.raises(FileNotFoundError, match=r"not installed: looked for spec\.md in .*site-packages/docs"):
        docs_dir()
    prefix = tmp_path / "prefix"
    (prefix / DOCS_DATA_DIR).mkdir(parents=True)
    (prefix / DOCS_DATA_DIR / "spec.md").write_text("# spec\n")
    monkeypatch.setattr(sysconfig, "get_path", lambda name, scheme=None: str(prefix))
    assert docs_dir() == prefix / DOCS_DATA_DIR


def test_own_packages_resolve_here() -> None:
    for name in installation.OWN_PACKAGES:
        assert foreign_package(name) is None, name


@pytest.mark.parametrize("shadow", ["reference.py", "reference/__init__.py"])
def test_a_module_shadowing_reference_is_refused_naming_both(tmp_path: Path, shadow: str) -> None:
    """In a fresh interpreter whose current directory holds a user's own ``reference`` (first on
    sys.path under ``python -c``), importing the strategies fails naming the user's module and ours."""
    (tmp_path / shadow).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / shadow).write_text("")
    proc = subprocess.run(
        [sys.executable, "-c", "import ddcl_incrt.strategies"], cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("ddcl_incrt.installation.ForeignPackageError: `import reference` would load"), last
    assert str(tmp_path / shadow) in last
    assert str(ROOT / "reference") in last


def test_the_docs_command_lists_prints_and_refuses_unknown_names(capsys: pytest.CaptureFixture[str]) -> None:
    from ddcl_incrt.cli import main

    assert main(["docs", "spec"]) == 0
    assert capsys.readouterr().out == (ROOT / "docs" / "spec.md").read_text(encoding="utf-8")
    assert main(["docs", "--path", "studies/cluster"]) == 0
    assert capsys.readouterr().out.strip() == str(ROOT / "docs" / "studies" / "cluster.md")
    assert main(["docs"]) == 0
    assert "spec" in capsys.readouterr().out.split()
    assert main(["docs", "no-such-doc"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ddcl-incrt docs: error: NAME: no document 'no-such-doc'")
    assert "spec" in err


def test_the_command_refuses_a_shadowed_package_with_exit_code_2(tmp_path: Path) -> None:
    (tmp_path / "training.py").write_text("")
    proc = subprocess.run(
        [sys.executable, "-m", "ddcl_incrt.cli", "claims"], cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("ddcl-incrt: error: `import training` would load")
    assert str(tmp_path / "training.py") in proc.stderr
