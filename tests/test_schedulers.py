"""bfdask's own computations run where dask would run them, without importing ``distributed``
where no client can exist (issue #18: 0.3 s of a fresh process's import, and more at exit).
"""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

import dask
import numpy as np
import pytest
from test_native import write_lif

from bfdask.schedulers import _local_scheduler, active_client, compute

if TYPE_CHECKING:
    from pathlib import Path

CHILD = r"""
import sys, dask
import bfdask
path, how = sys.argv[1], sys.argv[2]
kwargs = dict(linewidth=3, z="sum", stats=["min", "max"])
if how == "config":
    with dask.config.set(scheduler="threads", num_workers=2):
        got = bfdask.profile_series(path, (4, 4), (40, 50), **kwargs)
else:
    got = bfdask.profile_series(path, (4, 4), (40, 50), **kwargs)
assert "distributed" not in sys.modules, "distributed was imported"
lazy = bfdask.profile_series(path, (4, 4), (40, 50), compute=False, **kwargs)
want = dask.compute(lazy)[0]  # dask's own way (imports distributed to look for a client)
for name in got:
    for var in got[name].data_vars:
        assert got[name][var].values.tobytes() == want[name][var].values.tobytes(), var
print("ok")
"""


@pytest.mark.parametrize("how", ["default", "config"])
def test_profile_series_imports_no_distributed(tmp_path: Path, how: str) -> None:
    """A fresh process computing profiles on threads never imports ``distributed``, and gets
    what :func:`dask.compute` gives."""
    path = write_lif(tmp_path / "two.lif", t=2, z=3, c=2, y=48, x=56, dtype="uint16", seed=7)
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), how], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("ok")


def test_local_scheduler_is_the_one_dask_would_choose() -> None:
    import dask.array as da
    import dask.threaded
    from dask.local import get_sync

    array = da.ones(4, chunks=2)
    assert _local_scheduler(None, (array, 3)) is dask.threaded.get  # the collection's default
    assert _local_scheduler("threads", ()) is dask.threaded.get
    assert _local_scheduler("Single-Threaded", ()) is get_sync
    assert _local_scheduler("distributed", ()) is None  # left to dask
    assert _local_scheduler(get_sync, ()) is get_sync
    with dask.config.set(scheduler="sync"):
        assert compute(array.sum())[0] == 4


def test_a_client_still_computes_once_distributed_is_imported() -> None:
    """With a client active, :func:`compute` runs on its workers (the task sees a worker)."""
    distributed = pytest.importorskip("distributed")

    def where() -> str:
        return str(distributed.get_worker().address)

    with (
        distributed.LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        assert active_client() is client
        (address,) = compute(dask.delayed(where)())
        assert address == next(iter(cluster.workers.values())).address
        assert compute(dask.delayed(np.add)(1, 2), scheduler="sync") == (3,)
    assert active_client() is None
