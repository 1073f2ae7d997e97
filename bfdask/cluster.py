"""Running bfdask on a ``dask.distributed`` cluster: :class:`JVMPlugin`.

Nothing here is required: a task that reads pixels starts its worker's JVM on first use
(:func:`bfdask.jvm.ensure`). The plugin makes that predictable -- the same heap and Bio-Formats
log level on every worker, chosen on the client -- and moves the JVM's start-up (about a
second) out of the first task.

>>> from distributed import Client
>>> client = Client("tcp://scheduler:8786")
>>> client.register_plugin(bfdask.JVMPlugin(max_heap="2G"))
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from distributed.diagnostics.plugin import WorkerPlugin

from . import handles, jvm, malloc, readers

if TYPE_CHECKING:
    from distributed import Worker

#: environment variables the plugin sets in each worker process (setting -> variable)
_ENV = {"max_heap": "BFDASK_MAX_HEAP", "log_level": "BFDASK_LOG_LEVEL"}


def worker_heap(memory_limit: int | None) -> int | None:
    """Default Java heap for a worker with ``memory_limit`` bytes (None: no limit, no default).

    The rule :func:`bfdask.jvm.default_max_heap` applies inside a task
    (:func:`bfdask.jvm.heap_for_worker`).
    """
    return jvm.heap_for_worker(memory_limit) if memory_limit else None


class JVMPlugin(WorkerPlugin):
    """Configure and start the JVM of every worker, present and future.

    Registered with :meth:`distributed.Client.register_plugin`. Its ``name`` is fixed, so
    registering it again replaces the previous one (e.g. to change the heap for workers that
    start later; a running JVM keeps its heap).

    On each worker, ``setup`` exports the settings as ``BFDASK_MAX_HEAP`` /
    ``BFDASK_LOG_LEVEL`` (so tasks that start the JVM lazily use them too), then starts the JVM
    unless ``warm=False``. ``teardown`` closes the worker's open Bio-Formats readers (their file
    handles) and restores the environment; it never stops the JVM, which javabridge cannot
    restart in the same process.

    Parameters
    ----------
    max_heap
        Java heap per worker (``"2G"``, ``"512M"`` or bytes). Default: the worker's own
        setting (``BFDASK_MAX_HEAP``, dask config ``bfdask.jvm.max-heap``), else a quarter of
        the worker's memory limit (at least 512 MiB). The heap lives inside the worker's
        memory: leave room for pixel blocks.
    log_level
        Bio-Formats log level (``"ERROR"``, ``"WARN"``...). Default: the worker's own setting.
    warm
        Start the JVM in ``setup`` (default) rather than in the first task.
    """

    name = "bfdask-jvm"

    def __init__(
        self,
        max_heap: str | int | None = None,
        log_level: str | None = None,
        *,
        warm: bool = True,
    ) -> None:
        if max_heap is not None:
            jvm.parse_size(max_heap)  # fail on the client, not on every worker
        self.max_heap = max_heap
        self.log_level = log_level
        self.warm = warm
        self._saved_env: dict[str, str | None] = {}

    def __repr__(self) -> str:
        return (
            f"JVMPlugin(max_heap={self.max_heap!r}, log_level={self.log_level!r}, "
            f"warm={self.warm!r})"
        )

    def _settings(self, worker: Worker) -> dict[str, str]:
        from . import config

        heap = config.get("bfdask.jvm.max-heap", self.max_heap)
        if heap in (None, ""):
            heap = worker_heap(worker.memory_manager.memory_limit)
        out = {}
        if heap not in (None, ""):
            out["max_heap"] = str(heap)
        if self.log_level is not None:
            out["log_level"] = str(self.log_level)
        return out

    def setup(self, worker: Worker) -> None:
        """Export the settings to the worker's environment and start its JVM."""
        from . import config

        if jvm.is_running():  # too late for an asked-for heap: say so rather than ignore it
            jvm.ensure(config.get("bfdask.jvm.max-heap", self.max_heap) or None)
        malloc.tune_for_planes()  # also where no task ever starts the JVM (native pixels)
        _import_task_modules()
        settings = self._settings(worker)
        for key, variable in _ENV.items():
            if key in settings:
                self._saved_env.setdefault(variable, os.environ.get(variable))
                os.environ[variable] = settings[key]
        if self.warm:
            jvm.ensure()

    def teardown(self, worker: Worker) -> None:
        """Close the worker's Bio-Formats readers and restore its environment (the JVM stays)."""
        if jvm.is_running():
            jvm.ensure()  # attach this thread: closing a reader is a Java call
        handles.close_all()  # Java readers and every other open file handle
        if jvm.is_running():
            readers.close_orphans()  # readers of task threads that ended
        for variable, value in self._saved_env.items():
            if value is None:
                os.environ.pop(variable, None)
            else:
                os.environ[variable] = value
        self._saved_env.clear()


def _import_task_modules() -> None:
    """Import what a reading task runs (the dask array layer, the native readers, the
    analysis kernel and scipy.ndimage), so that a worker's first task does not pay
    a second of imports: it pays them here, while the cluster starts."""
    import importlib

    from . import native

    for name in ("array", "sampling", "projection", *sorted(set(native.READERS.values()))):
        importlib.import_module(f"{__package__}.{name}")
    importlib.import_module("scipy.ndimage")  # the line sampling (map_coordinates)


def worker_jvm_info() -> dict[str, object]:
    """What a worker process knows about its JVM, without starting one.

    For ``client.run(bfdask.cluster.worker_jvm_info)``: whether the JVM runs, its heap
    (bytes), how many Bio-Formats readers are open (all threads), ``BFDASK_MAX_HEAP``, the pid.
    """
    open_readers = handles.count(readers.KIND, all_threads=True)
    return {
        "running": jvm.is_running(),
        "max_heap": jvm.max_heap(),
        "open_readers": open_readers,
        "env_max_heap": os.environ.get("BFDASK_MAX_HEAP"),
        "pid": os.getpid(),
    }
