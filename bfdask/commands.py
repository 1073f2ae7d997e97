"""What bfdask's commands share: their argument types and the dask client they compute on.

Imports nothing heavy: ``distributed`` loads only when a client is asked for.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator


def series_argument(text: str) -> int | str:
    """One ``--series`` item: an index (digits, negative from the end) or a series name."""
    return int(text) if text.lstrip("-").isdigit() else text


@contextlib.contextmanager
def client(
    scheduler: str | None, *, workers: int | None = None, memory_limit: str | None = None
) -> Iterator[Any]:
    """A ``distributed.Client`` for one command, with :class:`bfdask.JVMPlugin` registered.

    Parameters
    ----------
    scheduler
        Address of a running dask scheduler; the client connects to it.
    workers, memory_limit
        Without ``scheduler``: start a quiet ``LocalCluster`` of ``workers`` single-threaded
        worker processes with this memory limit each, closed on exit. Without either, no
        client: yields None and dask computes on local threads.

    Yields
    ------
    distributed.Client or None
        The client, closed (and the local cluster with it) when the block ends.
    """
    if not scheduler and workers is None:
        yield None
        return
    from distributed import Client, LocalCluster

    from .cluster import JVMPlugin

    cluster = None
    if scheduler:
        connected = Client(scheduler)
    else:
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            memory_limit=memory_limit,
            dashboard_address=":0",  # a free port: never "8787 in use" warnings
            silence_logs=logging.ERROR,
        )
        connected = Client(cluster)
    try:
        connected.register_plugin(JVMPlugin())
        yield connected
    finally:
        connected.close()
        if cluster is not None:
            cluster.close()
