"""Every ```python block of README.md runs, in README order, each in a namespace of its own.

The blocks run in a folder holding the files they name, so that they run as printed:

* ``embryos.lif``: a Mark-and-Find LIF written by the shared ``tools/make_lif.py`` (series
  ``Mark_and_Find_001/Pos001`` to ``Pos003``, channels ``GFP`` and ``mCherry``, time stamps);
* ``experiment.lif``: the corpus' ``lif/PR2729_frameOrderCombinedScanTypes.lif`` (4 series);
* ``demo-output/positions.ome.tif``: ``bfdask demo``'s sample (``bfdask.demo``).

Each block may use, without defining them, the names the README treats as known: ``bfdask``
(imported in its first block) and ``path`` ("a file": ``experiment.lif``). Warnings are errors,
as in the rest of the suite. A block that cannot run here (it needs a real cluster) is skipped
only by a visible ``<!-- readme-test: skip (reason) -->`` line right before it in the README,
and must still compile; any other block that raises fails its test.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from shared_data import DATA, MAKE_LIF, requires_data, requires_make_lif

import bfdask

if TYPE_CHECKING:
    from collections.abc import Iterator

README = Path(__file__).resolve().parents[1] / "README.md"
HEADING = re.compile(r"^#{1,6} ")
SKIP = re.compile(r"<!--\s*readme-test:\s*skip\s*\((.+?)\)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    """One ```python block: its code, the README line its code starts on, its heading."""

    code: str
    line: int
    section: str
    skip: str | None

    @property
    def id(self) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", self.section.lower()).strip("-")
        return f"L{self.line}-{slug}"


def readme_blocks(text: str) -> list[Block]:
    """The ```python blocks of ``text`` in order, with their heading and skip reason."""
    blocks: list[Block] = []
    section, previous, fence, code = "top", "", None, []
    for number, line in enumerate(text.splitlines(), start=1):
        if fence is None and line.startswith("```"):
            fence, code = (number, line.strip() == "```python"), []
            skip = SKIP.search(previous)
        elif fence is not None and line.strip() == "```":
            start, is_python = fence
            if is_python:
                reason = skip.group(1) if skip else None
                blocks.append(Block("".join(code), start + 1, section, reason))
            fence = None
        elif fence is not None:
            code.append(line + "\n")
        elif HEADING.match(line):
            section = line.lstrip("#").strip()
        if line.strip():
            previous = line
    return blocks


BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))


def test_the_readme_has_python_blocks_and_skips_few() -> None:
    """Guards an empty parametrization (a changed fence) and skips becoming the rule."""
    assert len(BLOCKS) >= 8
    assert sum(block.skip is not None for block in BLOCKS) <= 2


def _make_lif_module():
    spec = importlib.util.spec_from_file_location("make_lif", MAKE_LIF)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write_embryos_lif(path: Path) -> None:
    """A small Mark-and-Find LIF whose channels are named GFP and mCherry, as in the README."""
    make_lif = _make_lif_module()
    hardware = make_lif._synthetic_hardware(2, 0, zoom=4.0, pinhole_m=9.5e-5)
    hardware = hardware.replace('"Dye1"', '"GFP"').replace('"Dye2"', '"mCherry"')
    spec = make_lif.Spec(3, 3, 2, 2, 48, 64, "uint16", "markfind", 0, hardware)
    make_lif.write_lif(str(path), spec, verbose=False)


@pytest.fixture(scope="module")
def readme_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding every file the README's blocks name."""
    from bfdask.demo import write_positions_sample

    folder = tmp_path_factory.mktemp("readme")
    _write_embryos_lif(folder / "embryos.lif")
    shutil.copyfile(
        DATA / "lif" / "PR2729_frameOrderCombinedScanTypes.lif", folder / "experiment.lif"
    )
    write_positions_sample(folder / "demo-output")
    return folder


@pytest.fixture
def in_readme_folder(readme_folder: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(readme_folder)
    monkeypatch.setenv("MPLBACKEND", "Agg")  # the analysis block plots
    yield readme_folder
    import matplotlib.pyplot as plt

    plt.close("all")


@requires_data
@requires_make_lif
@pytest.mark.parametrize("block", [pytest.param(b, id=b.id) for b in BLOCKS])
def test_readme_block_runs(block: Block, in_readme_folder: Path) -> None:
    # padded so that a traceback names the README's own line numbers; a skipped block must
    # still be valid Python
    code = compile("\n" * (block.line - 1) + block.code, str(README), "exec")
    if block.skip is not None:
        pytest.skip(f"README.md:{block.line}: {block.skip}")
    namespace = {"__name__": "__readme__", "bfdask": bfdask, "path": "experiment.lif"}
    exec(code, namespace)  # warnings are errors, as in the whole suite (pyproject.toml)
