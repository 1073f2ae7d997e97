"""Computing bfdask's own results on the scheduler dask would choose, without paying for
``distributed`` where no client can exist.

:func:`dask.compute` looks for a ``distributed`` client before anything else, and imports
``distributed`` to look (0.3 s, and more at interpreter exit), even with the ``threads``
scheduler asked for by name. A client exists only in a process that imported ``distributed``;
until one has, :func:`compute` hands dask the local scheduler dask itself would have chosen.
"""

from __future__ import annotations

import sys
from typing import Any


def compute(*collections: Any, **kwargs: Any) -> tuple[Any, ...]:
    """:func:`dask.compute` of ``collections``, with the same scheduler dask would choose.

    A ``scheduler=`` keyword or the ``scheduler`` setting is honoured as dask honours it; with
    neither, each collection's default (threads for arrays). Once ``distributed`` is imported,
    this is :func:`dask.compute` itself, so an active client computes as usual.
    """
    import dask

    if "distributed" not in sys.modules:
        chosen = kwargs.get("scheduler", dask.config.get("scheduler", None))
        local = _local_scheduler(chosen, collections)
        if local is not None:
            kwargs["scheduler"] = local
    result: tuple[Any, ...] = dask.compute(*collections, **kwargs)
    return result


def _local_scheduler(chosen: Any, collections: tuple[Any, ...]) -> Any:
    """The scheduler function for ``chosen``: a name of one of dask's local schedulers, a
    function, or None for the collections' own default (when they share one). None to let
    dask decide (an executor, a name dask knows only with ``distributed``...)."""
    from dask.base import is_dask_collection, named_schedulers

    if chosen is None:
        defaults = {c.__dask_scheduler__ for c in collections if is_dask_collection(c)}
        return defaults.pop() if len(defaults) == 1 else None
    if isinstance(chosen, str):
        return named_schedulers.get(chosen.lower())
    return chosen if callable(chosen) else None


def active_client() -> Any:
    """The ``distributed`` client dask would compute on now, or None (always None before
    ``distributed`` is imported: no client can exist yet)."""
    import dask

    if "distributed" not in sys.modules:
        return None
    if dask.config.get("scheduler", None) not in (None, "dask.distributed", "distributed"):
        return None
    from distributed import default_client

    try:
        return default_client()
    except ValueError:
        return None
