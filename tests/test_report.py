"""Tables and plots of the analysis (bfdask.report), as the CLI, the demo and a notebook use
them: issue #16's frictions (why no line was found; no line drawn across acquisition gaps)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pytest
import tifffile

import bfdask
from bfdask import demo, report

if TYPE_CHECKING:
    from pathlib import Path


def test_a_position_without_a_line_says_why(tmp_path: Path) -> None:
    path = tmp_path / "blank.ome.tif"
    tifffile.imwrite(path, np.zeros((3, 1, 1, 32, 48), np.uint16), metadata={"axes": "TCZYX"})
    stats = bfdask.profile(bfdask.open(path), line="auto").compute()
    assert int(stats["line_status"]) != 0  # nothing bright: no line
    why = str(stats["line_reason"].values)
    assert why
    printed = report.text({"blank": stats})
    assert f"no line found: {why}" in printed


def test_the_plot_does_not_join_acquisition_blocks(tmp_path: Path) -> None:
    sample = demo.PositionsSample()
    path = demo.write_positions_sample(tmp_path, sample)
    with pytest.warns(bfdask.PaddedPositionsWarning):  # the sample's Pos013 is short
        positions = bfdask.open_positions(path)
    first = positions.isel(P=0)
    stats = bfdask.profile(first, line="auto", stats=["min", "max"]).compute()
    blocks = {str(b) for b in first["block"].values}
    figure = report.plot({"P0": stats})
    lines = [line for line in figure.axes[0].get_lines() if line.get_linestyle() == "-"]
    assert len(blocks) > 1
    assert len(lines) == 2 * len(blocks)  # one line per statistic and block
    labels = [line.get_label() for line in lines if not line.get_label().startswith("_")]
    assert sorted(labels) == ["max", "min"]  # each statistic once in the legend
    # one legend for the figure, above the panels; none inside a panel, over the data
    assert len(figure.legends) == 1 and figure.axes[0].get_legend() is None
    texts = [t.get_text() for t in figure.legends[0].get_texts()]
    assert sorted(texts) == ["max", "min"]
