"""The kit as a pytest plugin (entry point ``pytest11``): ``pytest --ddcl-adapter=package.module:factory``.

With the option, every golden check becomes one test item ``conformance::<check>`` (a check the port
does not implement is skipped as not covered; a failure shows the kit's message and the repro
snippet), one item ``conformance::coverage`` fails when the adapter declares no operation (so that a
run of nothing but skips cannot pass), and with ``--ddcl-properties`` every property of property mode
one more item ``conformance-properties::<claim>``. ``--ddcl-tolerances FILE``, ``--ddcl-skip PATTERN`` and
``--ddcl-xfail PATTERN`` are the command line's ``--tolerances``, ``--skip``, ``--xfail``.
Without ``--ddcl-adapter`` the plugin adds its options and nothing else (it is loaded in every
pytest run of an environment where this package is installed), and imports nothing heavy.
"""

from __future__ import annotations

from typing import Any

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ddcl-incrt conformance")
    group.addoption("--ddcl-adapter", default=None, help="package.module:factory of a port's adapter")
    group.addoption("--ddcl-tolerances", default=None, help="the port's tolerance declaration (JSON)")
    group.addoption("--ddcl-skip", action="append", default=[], help="skip checks matching (repeatable)")
    group.addoption("--ddcl-xfail", action="append", default=[], help="expected failures (repeatable)")
    group.addoption("--ddcl-properties", action="store_true", default=False, help="also run property mode")


class ConformanceFailure(Exception):
    """A conformance check that failed; its text is the kit's message and repro snippet."""


class ConformanceItem(pytest.Item):
    """One golden check on the port."""

    def __init__(self, *, check: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check = check

    def runtest(self) -> None:
        from ddcl_incrt.conformance.runner import run_adapter

        opt = self.config.getoption
        report = run_adapter(
            opt("--ddcl-adapter"),
            policy=opt("--ddcl-tolerances"),
            skip=[p for p in opt("--ddcl-skip") if _matches(self.check, p)],
            xfail=[p for p in opt("--ddcl-xfail") if _matches(self.check, p)],
            only=[self.check],
        )
        (result,) = report.results
        if result.status == "not covered":
            pytest.skip(f"not covered: the port does not implement {result.operation}")
        if result.status == "skip":
            pytest.skip("skipped by --ddcl-skip")
        if result.status == "xfail":
            pytest.xfail(result.message)
        if result.status in ("fail", "error", "xpass"):
            raise ConformanceFailure(f"{result.check}: {result.status}: {result.message}\nrepro:\n{result.repro}")

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ConformanceFailure):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[str, int | None, str]:
        return "conformance", None, f"conformance::{self.check}"


class CoverageItem(pytest.Item):
    """The minimum coverage: the adapter declares at least one operation (each check's own item then
    fails if a declared operation is not implemented)."""

    def runtest(self) -> None:
        from ddcl_incrt.conformance.operations import load_adapter

        port = load_adapter(self.config.getoption("--ddcl-adapter"))
        if not port.capabilities:
            raise ConformanceFailure(
                f"coverage: the adapter {port.name!r} declares no operations (its capabilities are empty): "
                "every check would be skipped as not covered, and nothing compared"
            )

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ConformanceFailure):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[str, int | None, str]:
        return "conformance", None, "conformance::coverage"


class PropertyItem(pytest.Item):
    """One property of property mode on the port."""

    def __init__(self, *, index: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.index = index

    def runtest(self) -> None:
        from ddcl_incrt.conformance import properties
        from ddcl_incrt.conformance.operations import load_adapter

        spec = self.config.getoption("--ddcl-adapter")
        port = load_adapter(spec)
        prop = properties.PROPERTIES[self.index]
        one = properties.run_properties(port, only=[prop], spec=spec)[0]
        if one.status == "not covered":
            pytest.skip(one.message)
        if one.status == "fail":
            text = f"{one.claim}: {one.name}: {one.message}\n{one.falsifying_example}".rstrip()
            raise ConformanceFailure(f"{text}\nreproduce:\n{one.repro}")

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ConformanceFailure):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[str, int | None, str]:
        return "conformance-properties", None, self.name


def _matches(check: str, pattern: str) -> bool:
    import fnmatch

    return fnmatch.fnmatchcase(check, pattern)


@pytest.hookimpl(tryfirst=True)  # before pytest's own -k / -m deselection, so that they apply to these items
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    spec = config.getoption("--ddcl-adapter")
    if not spec:
        return
    from ddcl_incrt.conformance.runner import golden

    checks = [e.case.check for e in golden()]
    new: list[pytest.Item] = [ConformanceItem.from_parent(session, name=f"conformance::{c}", check=c) for c in checks]
    new.append(CoverageItem.from_parent(session, name="conformance::coverage"))
    if config.getoption("--ddcl-properties"):
        from ddcl_incrt.conformance.properties import PROPERTIES

        new += [
            PropertyItem.from_parent(session, name=f"conformance-properties::{p.claim}", index=i)
            for i, p in enumerate(PROPERTIES)
        ]
    items.extend(new)


__all__ = [
    "ConformanceFailure",
    "ConformanceItem",
    "CoverageItem",
    "PropertyItem",
    "pytest_addoption",
    "pytest_collection_modifyitems",
]
