"""The same graph on the threaded scheduler and on a real LocalCluster; small pickled tasks."""

from __future__ import annotations

import pickle

import dask
import numpy as np
import pytest
import tifffile
from dask.array.utils import assert_eq

import bfdask


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=2, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


@pytest.fixture
def sample(tmp_path):
    rng = np.random.default_rng(7)
    source = rng.integers(0, 4000, (6, 2, 5, 64, 48), dtype="uint16")
    path = tmp_path / "sample.ome.tif"
    tifffile.imwrite(path, source, ome=True, metadata={"axes": "TCZYX"})
    return str(path), source


@pytest.mark.slow
@pytest.mark.cluster
def test_threads_and_cluster_give_identical_pixels(client, sample, fake):
    path, source = sample
    other = fake("c", sizeX=96, sizeY=40, sizeZ=3, sizeC=2, sizeT=5, series=2, pixelType="int16")
    for p, chunks in ((path, None), (path, {"Z": 1, "Y": 32}), (other, None)):
        data = bfdask.open(p, series=-1, chunks=chunks)
        with dask.config.set(scheduler="threads", num_workers=4):
            threaded = data.values
        on_cluster = client.compute(data.data).result()
        np.testing.assert_array_equal(threaded, on_cluster)
    assert_eq(bfdask.open(path).data, source)


@pytest.mark.cluster
def test_workers_read_with_their_own_jvm(client, sample):
    path, _ = sample
    data = bfdask.open(path)
    assert int(client.compute(data.sum().data).result()) == int(data.values.sum())
    infos = client.run(bfdask.jvm_info)
    pids = {info["pid"] for info in infos.values()}
    assert len(pids) == 2  # one JVM in each worker process
    assert all(info["libjvm"] == info["libjvm_expected"] for info in infos.values())


def test_graph_pickles_small(sample):
    path, _ = sample
    data = bfdask.open(path, chunks={"Z": 1})
    graph = dict(data.data.__dask_graph__())
    n_tasks = data.data.npartitions
    size = len(pickle.dumps(graph, protocol=5))
    assert n_tasks == 6 * 5
    assert size / n_tasks < 2048, f"{size / n_tasks:.0f} bytes per task"
    # and no Java object or OME blob travels
    blob = pickle.dumps(graph)
    assert b"ome_xml" not in blob and b"OME" not in blob
