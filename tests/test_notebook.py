"""examples/profile.ipynb runs end to end in a real Jupyter kernel of this environment."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "profile.ipynb"


def _text(cell) -> str:
    parts = []
    for output in cell.get("outputs", []):
        parts.append(output.get("text", ""))
        data = output.get("data", {})
        parts.append(data.get("text/plain", ""))
        parts.append(data.get("text/html", ""))
    return "\n".join(parts)


def test_stored_outputs_are_present() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert all(cell.get("outputs") is not None for cell in code)
    kinds = {key for cell in code for out in cell.outputs for key in out.get("data", {})}
    assert {"text/html", "image/png"} <= kinds  # the table and the plot were saved


@pytest.mark.slow
@pytest.mark.cluster  # the notebook starts a LocalCluster
def test_notebook_runs_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")  # jupyter_core's migration warning
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
    probe = nbformat.v4.new_code_cell("import sys; print(sys.prefix)")
    nb.cells.insert(0, probe)
    client = nbclient.NotebookClient(
        nb,
        timeout=180,
        kernel_name="python3",  # resolved to this interpreter (jupyter_client maps "python")
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()

    assert _text(probe).strip() == sys.prefix  # the kernel is this venv's Python
    assert (tmp_path / "demo-output" / "positions.ome.tif").exists()  # `bfdask demo` wrote it
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    errors = [out for cell in code for out in cell.outputs if out.output_type == "error"]
    assert not errors
    sources = "\n".join(cell.source for cell in code)
    assert "bfdask.demo" not in sources and "from bfdask.demo" not in sources  # public API only
    assert "open_positions" in sources and 'line="auto"' in sources
    texts = [_text(cell) for cell in code]
    table = next(t for t in texts if "min_max_ratio" in t and "block" in t and "<table" in t)
    assert "22.5h to 41h pSCI" in table  # the blocks, stitched in time
    flagged = next(t for t in texts if "reason" in t and "detail" in t)
    assert "blank" in flagged and "Pos008" in flagged  # the demo's failed acquisition
    images = [out for cell in code for out in cell.outputs if "image/png" in out.get("data", {})]
    assert len(images) == 1
