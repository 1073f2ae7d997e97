"""bfdask on a real dask.distributed LocalCluster (worker processes, each with its own JVM).

With and without :class:`bfdask.JVMPlugin`; the same numbers as the threaded scheduler; task
results stay profile-sized; and a worker with a 1 GiB memory limit streams a dataset ten times
larger than that without spilling or being paused.
"""

from __future__ import annotations

import resource
from typing import TYPE_CHECKING

import numpy as np
import pytest
import xarray as xr
from skimage.measure import profile_line

import bfdask
from bfdask import demo
from bfdask.cluster import JVMPlugin, worker_heap, worker_jvm_info

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

distributed = pytest.importorskip("distributed")

pytestmark = [
    # distributed's own shutdown noise on a loaded machine, not bfdask's
    pytest.mark.filterwarnings("ignore:.*Creating scratch directories.*:UserWarning"),
    pytest.mark.filterwarnings("ignore:coroutine .* was never awaited:RuntimeWarning"),
]

MiB = 1 << 20
SAMPLE = demo.Sample(
    series=2,
    size_t=10,
    size_z=3,
    size_y=64,
    size_x=160,
    line=((25, 8), (38, 150)),
    line_width=7,
    bad_series=1,
    bad_timepoint=4,
)


def _peak_rss() -> int:
    """Peak resident memory of the calling process, in bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@pytest.fixture(autouse=True)
def bioformats_pixels(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are about the JVM in each worker: read through Bio-Formats. (The sample is
    an OME-TIFF, which would otherwise be read without Java; see tests/test_native.py.)"""
    monkeypatch.setenv("BFDASK_PIXELS", "bioformats")


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo.write_sample(tmp_path_factory.mktemp("sample"), SAMPLE)


@pytest.fixture(scope="module")
def client() -> Iterator[distributed.Client]:
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            memory_limit="2GiB",
            dashboard_address=":0",
            silence_logs=40,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def _threaded(sample: Path) -> dict[str, xr.Dataset]:
    return {
        name: stats.compute(scheduler="threads")
        for name, stats in bfdask.profile_series(
            sample, *SAMPLE.line, linewidth=SAMPLE.line_width, compute=False
        ).items()
    }


# The order matters: first without the plugin (fresh workers), then with it.


@pytest.mark.slow
@pytest.mark.cluster
def test_without_plugin_tasks_start_the_jvm(client: distributed.Client, sample: Path) -> None:
    before = client.run(worker_jvm_info)
    assert not any(info["running"] for info in before.values())
    results = bfdask.profile_series(sample, *SAMPLE.line, linewidth=SAMPLE.line_width)
    expected = _threaded(sample)
    assert list(results) == list(expected)
    for name in results:
        xr.testing.assert_identical(results[name], expected[name])
    after = client.run(worker_jvm_info)
    assert all(info["running"] for info in after.values())
    # lazily started JVMs still size their heap from the worker's memory limit
    assert {info["max_heap"] for info in after.values()} == {worker_heap(2 << 30)} == {512 * MiB}
    bad = bfdask.bad_timepoints(results[SAMPLE.series_names()[SAMPLE.bad_series]])
    assert bad["T"].tolist() == [SAMPLE.bad_timepoint]


@pytest.mark.cluster
def test_task_results_are_profiles_not_pixels(client: distributed.Client, tmp_path: Path) -> None:
    path = tmp_path / "p&sizeX=1024&sizeY=1024&sizeZ=4&sizeC=2&sizeT=6&pixelType=uint16.fake"
    path.touch()
    data = bfdask.open(path)
    stats = bfdask.profile(data, (0, 0), (1023, 1023), linewidth=5)  # crosses the whole plane
    with distributed.get_task_stream(client) as stream:
        computed = stats.compute()
    records = [r for r in stream.data if "nbytes" in r]
    fused = [r for r in records if isinstance(r["key"], tuple) and "bfdask" in r["key"][0]]
    assert {r["key"][0] for r in fused} == {stats["profile"].data.name}  # the profile's own key
    assert len(fused) == data.data.npartitions  # one task per (T, Z) block reads and profiles
    plane = 1024 * 1024 * 2
    per_block = [r["nbytes"] for r in records if "finalize" not in str(r["key"])]
    assert max(per_block) <= computed["profile"].isel(T=0).nbytes < plane // 20
    assert max(r["nbytes"] for r in records) <= computed.nbytes  # the gathered result
    expected = bfdask.profile(data.isel(T=[0, 5]), (0, 0), (1023, 1023), linewidth=5)
    xr.testing.assert_identical(computed.isel(T=[0, 5]), expected.compute(scheduler="threads"))


@pytest.mark.cluster
@pytest.mark.parametrize("stats", [None, ["min", "max"]], ids=["plain", "stats"])
def test_profile_series_runs_one_task_per_block(
    client: distributed.Client, sample: Path, stats: list[str] | None
) -> None:
    """A worker runs the blocks' reads and nothing between them: no slice per variable and
    no alias left by dask's fusion, each of which would cost a scheduler round trip on a
    cluster (issue #18). The same Datasets as the lazy ones computed on threads."""
    pytest.importorskip("dask._task_spec")  # older dask: fusion's aliases stay
    from dask.utils import key_split

    options = {"linewidth": SAMPLE.line_width, "stats": stats}
    with distributed.get_task_stream(client) as stream:
        results = bfdask.profile_series(sample, *SAMPLE.line, **options)
    ran = [key_split(record["key"]) for record in stream.data]
    work = [name for name in ran if not name.startswith(("original-", "finalize"))]
    # the sample's blocks hold whole Z stacks and planes: one task each reads and profiles
    blocks = sum(bfdask.open(sample, series=i).data.npartitions for i in range(SAMPLE.series))
    assert work == ["bfdask-" + ("stats" if stats else "profile")] * blocks
    lazy = bfdask.profile_series(sample, *SAMPLE.line, compute=False, **options)
    for name, computed in results.items():
        xr.testing.assert_identical(computed, lazy[name].compute(scheduler="threads"))


@pytest.mark.slow
@pytest.mark.cluster
def test_plugin_configures_and_warms_workers(client: distributed.Client, sample: Path) -> None:
    plugin = JVMPlugin(max_heap="600M")
    assert plugin.name == "bfdask-jvm"
    client.register_plugin(plugin)
    client.restart()  # new worker processes: the plugin runs before any task
    infos = client.run(worker_jvm_info)
    assert len(infos) == 2
    for info in infos.values():
        assert info["running"] and info["open_readers"] == 0
        assert info["max_heap"] == 600 * MiB
        assert info["env_max_heap"] == "600M"
    results = bfdask.profile_series(sample, *SAMPLE.line, linewidth=SAMPLE.line_width)
    expected = _threaded(sample)
    for name in results:
        xr.testing.assert_identical(results[name], expected[name])
    assert sum(info["open_readers"] for info in client.run(worker_jvm_info).values()) > 0

    # registering again replaces it (fixed name); removing it closes readers, not the JVM
    client.register_plugin(JVMPlugin(max_heap="600M", warm=False))
    client.unregister_worker_plugin("bfdask-jvm")
    for info in client.run(worker_jvm_info).values():
        assert info["running"] and info["open_readers"] == 0
        assert info["env_max_heap"] is None
    again = bfdask.profile_series(sample, *SAMPLE.line, linewidth=SAMPLE.line_width)
    for name in again:  # readers reopen on demand
        xr.testing.assert_identical(again[name], expected[name])


def test_plugin_rejects_bad_heap_on_the_client() -> None:
    with pytest.raises(ValueError, match="heap size"):
        JVMPlugin(max_heap="lots")


@pytest.mark.slow
@pytest.mark.cluster
def test_one_gib_worker_streams_ten_times_its_memory(tmp_path: Path) -> None:
    limit = 1 << 30
    size_t = 20  # 20 stacks of 64 planes of 2048 x 2048 uint16: 10 GiB, in 128 MiB blocks
    path = tmp_path / (
        f"big&sizeX=2048&sizeY=2048&sizeZ=64&sizeC=1&sizeT={size_t}&pixelType=uint16.fake"
    )
    path.touch()
    data = bfdask.open(path)
    assert data.nbytes >= 10 * limit
    assert len(data.data.chunks[2]) > 1  # stacks span several Z blocks: projected where read
    with (
        distributed.LocalCluster(
            n_workers=1,
            threads_per_worker=1,
            processes=True,
            memory_limit=limit,
            dashboard_address=":0",
            silence_logs=40,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        client.register_plugin(JVMPlugin())
        (pid_before,) = {info["pid"] for info in client.run(worker_jvm_info).values()}
        stats = bfdask.profile(data, (0, 0), (2047, 2047), linewidth=3)  # reads whole planes
        computed = stats.compute()
        (state,) = client.run(
            lambda dask_worker: {
                "peak": _peak_rss(),
                "spilled": len(getattr(dask_worker.data, "slow", ())),
                "status": str(dask_worker.status),
                "pid": __import__("os").getpid(),
            }
        ).values()
    assert state["pid"] == pid_before  # never killed and restarted
    assert state["spilled"] == 0
    assert "running" in state["status"]
    print(f"worker peak RSS {state['peak'] / MiB:.0f} MiB for {data.nbytes / (1 << 30):.0f} GiB")
    assert state["peak"] < 0.8 * limit  # below distributed's pause threshold
    # numbers as expected: fake planes are x gradients, identical in every timepoint but the
    # coded boxes in the top rows, which the diagonal crosses at its start
    assert computed.sizes["T"] == size_t
    gradient = np.broadcast_to(np.arange(2048, dtype=np.uint16), (2048, 2048))
    top = profile_line(gradient, (0, 0), (2047, 2047), linewidth=3).max()
    np.testing.assert_array_equal(computed["max"].values, np.full((size_t, 1), top))
    first = bfdask.profile(data.isel(T=[0, size_t - 1]), (0, 0), (2047, 2047), linewidth=3)
    xr.testing.assert_identical(
        computed.isel(T=[0, size_t - 1]), first.compute(scheduler="threads")
    )
