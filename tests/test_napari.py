"""The napari reader plugin (issue #16): its layer tuples on real files, its npe2 manifest, and
a real napari viewer (Qt on a virtual X screen) opening a shared LIF and a CZI through it."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import dask.array as da
import pytest
import yaml
from shared_data import DATA, requires_data

import bfdask
from bfdask import napari_reader

LIF = DATA / "lif" / "PR2729_frameOrderCombinedScanTypes.lif"
CZI = DATA / "czi" / "CellDivision_T3_Z5_CH2_X240_Y170_comp1.czi"
MANIFEST = Path(napari_reader.__file__).with_name("napari.yaml")


@requires_data
def test_the_reader_gives_one_layer_per_channel_with_scale_and_names():
    read = napari_reader.get_reader(str(LIF))
    assert read is napari_reader.read
    ((data, options, kind),) = read(str(LIF))
    source = bfdask.open(LIF)
    assert kind == "image" and isinstance(data, da.Array) and data.shape == source.shape
    assert options["channel_axis"] == source.dims.index("C")
    channels = [str(c) for c in source["C"].values]
    assert options["name"] == [f"{source.attrs['series_name']} {c}" for c in channels]
    assert len(options["colormap"]) == len(channels) == 2
    assert options["axis_labels"] == ["T", "Z", "Y", "X"]
    assert options["scale"][2:] == pytest.approx(
        [source.attrs["physical_size_y"], source.attrs["physical_size_x"]]
    )
    assert options["scale"][0] == pytest.approx(source.attrs["time_increment"])
    assert len(options["metadata"]["series"]) == 4  # the other series are listed
    assert options["metadata"]["bfdask"]["path"] == str(LIF)
    assert "<OME" in options["metadata"]["ome_xml"]


def test_the_reader_declines_what_it_does_not_open(tmp_path):
    assert napari_reader.get_reader(str(tmp_path / "notes.txt")) is None
    assert napari_reader.get_reader([str(tmp_path / "a.lif"), str(tmp_path / "b.lif")]) is None
    folder = tmp_path / "folder.lif"
    folder.mkdir()
    assert napari_reader.get_reader(str(folder)) is None


def test_the_manifest_names_the_readers_suffixes():
    manifest = yaml.safe_load(MANIFEST.read_text())
    (reader,) = manifest["contributions"]["readers"]
    assert reader["filename_patterns"] == [f"*{s}" for s in napari_reader.SUFFIXES]
    (command,) = manifest["contributions"]["commands"]
    assert command["python_name"] == "bfdask.napari_reader:get_reader"
    if importlib.util.find_spec("npe2") is not None:
        from npe2 import PluginManifest

        assert PluginManifest.from_file(MANIFEST).name == "bfdask"


#: a virtual X screen for one command
XVFB = ("xvfb-run", "-a", "-s", "-screen 0 1280x1024x24")

VIEWER = """
import json, sys
import numpy as np
import napari

viewer = napari.Viewer(show=True)  # on the virtual screen: drawn as a user sees it
out = {}
for path in sys.argv[1:]:
    viewer.layers.clear()
    layers = viewer.open(path, plugin="bfdask")
    viewer.reset_view()
    shot = viewer.screenshot(canvas_only=True, flash=False)
    out[path] = {
        "names": [layer.name for layer in layers],
        "scale": [list(map(float, layer.scale)) for layer in layers],
        "ndim": [layer.ndim for layer in layers],
        "shot_std": float(np.asarray(shot)[..., :3].std()),
    }
viewer.close()
print(json.dumps(out))
"""


@pytest.mark.napari
@pytest.mark.slow
@requires_data
@pytest.mark.skipif(
    importlib.util.find_spec("napari") is None,
    reason="napari is not installed here (ci/setup-jpype.sh installs it: bfdask[napari])",
)
@pytest.mark.skipif(
    shutil.which("xvfb-run") is None,
    reason="no xvfb-run: napari draws with OpenGL, which Qt's offscreen platform lacks "
    "(ci/setup-display.sh installs Xvfb and Qt's xcb libraries)",
)
def test_a_napari_viewer_opens_a_lif_and_a_czi_through_the_plugin():
    env = {**os.environ, "QT_QPA_PLATFORM": "xcb"}  # a virtual X screen, Mesa's OpenGL
    done = subprocess.run(
        [*XVFB, sys.executable, "-c", textwrap.dedent(VIEWER), str(LIF), str(CZI)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    shown = json.loads(done.stdout.strip().splitlines()[-1])
    for path in (LIF, CZI):
        source = bfdask.open(path)
        seen = shown[str(path)]
        channels = [str(c) for c in source["C"].values]
        assert seen["names"] == [f"{source.attrs['series_name']} {c}" for c in channels]
        assert all(n == 4 for n in seen["ndim"])  # T, Z, Y, X per channel layer
        assert seen["scale"][0][-1] == pytest.approx(source.attrs.get("physical_size_x", 1.0))
        assert seen["shot_std"] > 0  # the canvas shows an image, not a blank
