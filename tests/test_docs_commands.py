"""Commands the README and the docs tell a reader to type are consistent with the code, as far as a
test can see without running them (the torchrun launches were run by hand: docs/distributed.md).

* docs/distributed.md's ``torchrun ... --dataset D --config F`` commands (and the README's) name a
  configuration file the page shows, whose layer fits the dataset D (the page showed one file, a
  planted-task layer, and the README ran it with ``--dataset digits``: refused, d_in 6 against 8).
* docs/strategies.md installs the package the way that works (it is not on PyPI).
* The README says what ``audit --quick`` changes: the quick training configuration and no proofs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from reference.model import LayerConfig
from reference.train_config import TrainConfig
from training.configs import QUICK_TRAIN
from training.data import named_dataset
from training.fields import Fields, read_dataclass

ROOT = Path(__file__).resolve().parents[1]
DISTRIBUTED = (ROOT / "docs" / "distributed.md").read_text(encoding="utf-8")
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _shown_configs(text: str) -> dict[str, tuple[LayerConfig, TrainConfig]]:
    """Each ```json block, under the file name (`name.json`) the text names last before it."""
    shown = {}
    for m in re.finditer(r"```json\n(.*?)```", text, re.S):
        names = re.findall(r"`([\w.-]+\.json)`", text[: m.start()])
        assert names, f"a JSON block without a file name before it: {m.group(1)[:60]}"
        f = Fields(json.loads(m.group(1)), f"{names[-1]}:")
        f.expect_keys(("layer_config", "train_config"))  # the launcher's read_config refuses other keys
        shown[names[-1]] = (
            read_dataclass(LayerConfig, f.sub("layer_config")),
            read_dataclass(TrainConfig, f.sub("train_config")),
        )
    return shown


def _launches(text: str) -> list[tuple[str, str, int]]:
    """(dataset, config file, processes) of every ``-m accelerated.distributed`` command."""
    joined = text.replace("\\\n", " ")
    found = []
    for line in joined.split("\n"):
        if "-m accelerated.distributed" in line and "--config" in line:
            dataset = re.search(r"--dataset (\w+)", line)
            config = re.search(r"--config (\S+)", line)
            assert dataset is not None
            assert config is not None
            nodes = re.search(r"--nnodes=(\d+)", line)
            per_node = re.search(r"--nproc_per_node=(\d+)", line)
            assert per_node is not None
            found.append(
                (dataset.group(1), config.group(1), int(per_node.group(1)) * (int(nodes.group(1)) if nodes else 1))
            )
    return found


def test_the_distributed_page_shows_a_config_for_every_launch() -> None:
    shown = _shown_configs(DISTRIBUTED)
    launches = _launches(DISTRIBUTED) + _launches(README)
    assert len(_launches(README)) == 1
    assert {d for d, _, _ in launches} == {"digits", "planted"}
    for dataset, config, processes in launches:
        assert config in shown, f"--config {config} (--dataset {dataset}) is not shown in docs/distributed.md"
        layer, train = shown[config]
        data = named_dataset(dataset, 0)
        for name, want in (("d_in", data.d_in), ("seq_len", data.seq_len), ("n_classes", data.n_classes)):
            assert getattr(layer, name) == want, f"{config} with --dataset {dataset}: {name}"
        assert train.batch_size % processes == 0, f"{config}: batch_size with {processes} processes"
        assert train.batch_size <= data.x_train.shape[0]
        assert train.probe_size <= data.x_train.shape[0]


def test_a_layer_for_the_wrong_dataset_is_seen() -> None:
    """The check above is not vacuous: the planted layer does not fit the digits."""
    planted, _ = _shown_configs(DISTRIBUTED)["planted.json"]
    assert planted.d_in != named_dataset("digits", 0).d_in


def _strategies_installs(text: str, pattern: str) -> list[str]:
    return [line for code in re.findall(pattern, text, re.S) for line in code.split("\n") if "strategies" in line]


@pytest.mark.parametrize(
    ("doc", "pattern"),
    [
        ("README.md", r"`(pip install [^`]*)`"),  # the folder table's inline command
        (
            "docs/strategies.md",
            r"```(?:sh|bash)\n(.*?)```",
        ),  # the page's command blocks (its prose names the PyPI form)
    ],
)
def test_the_strategies_extra_is_installed_from_a_clone_or_a_wheel(doc: str, pattern: str) -> None:
    installs = _strategies_installs((ROOT / doc).read_text(encoding="utf-8"), pattern)
    assert installs
    for line in installs:
        assert "pip install" in line
        assert not re.search(r"pip install \"?ddcl-incrt\[", line), f"not on PyPI: {line}"


def test_the_readme_says_what_audit_quick_changes() -> None:
    sentence = re.search(r"\(`--quick`:(.*?)\)\. Without torch", README, re.S)
    assert sentence is not None
    said = " ".join(sentence.group(1).split())
    for fact in (
        f"{QUICK_TRAIN.steps} steps",
        f"every {QUICK_TRAIN.check_every}",
        f"`T_d` {QUICK_TRAIN.T_d}",
        f"`T_prune` {QUICK_TRAIN.T_prune}",
        f"evaluation every {QUICK_TRAIN.eval_every}",
        "no proofs or falsifiers",
    ):
        assert fact in said, fact
