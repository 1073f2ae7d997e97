"""bfdask's settings: keyword > ``BFDASK_*`` environment variable > dask config > default.

The packaged defaults (``bfdask.yaml``) are merged into dask's config on import, so
``dask.config.set({"bfdask.jvm.max-heap": "8G"})`` works like any dask setting.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dask.config
import yaml

_DEFAULTS_FILE = Path(__file__).with_name("bfdask.yaml")
with _DEFAULTS_FILE.open() as _f:
    dask.config.update_defaults(yaml.safe_load(_f))

#: dask config key -> environment variable that overrides it
ENV_VARS = {
    "bfdask.jvm.max-heap": "BFDASK_MAX_HEAP",
    "bfdask.jvm.log-level": "BFDASK_LOG_LEVEL",
    "bfdask.jvm.bridge": "BFDASK_BRIDGE",
    "bfdask.jvm.bioformats-jar": "BFDASK_BIOFORMATS_JAR",
    "bfdask.reader.cache-size": "BFDASK_READER_CACHE_SIZE",
    "bfdask.reader.memo-dir": "BFDASK_MEMO_DIR",
    "bfdask.reader.memo-min-ms": "BFDASK_MEMO_MIN_MS",
    "bfdask.pixels": "BFDASK_PIXELS",
    "bfdask.reader.allow-outside-files": "BFDASK_ALLOW_OUTSIDE_FILES",
    "bfdask.reader.open-timeout": "BFDASK_OPEN_TIMEOUT",
    "bfdask.progress": "BFDASK_PROGRESS",
}

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off", "none")


def get(key: str, keyword: Any = None) -> Any:
    """Return the setting ``key``: ``keyword`` if given, else its env var, else dask config."""
    if keyword is not None:
        return keyword
    env = ENV_VARS.get(key)
    if env is not None and env in os.environ:
        return os.environ[env]
    return dask.config.get(key, default=None)


def flag(key: str, keyword: bool | None = None) -> bool:
    """The yes/no setting ``key`` (as :func:`get`); strings such as ``"1"``/``"0"``,
    ``"true"``/``"false"``, ``"yes"``/``"no"``, ``"on"``/``"off"`` are understood.

    Raises
    ------
    ValueError
        The value is none of those; the message names the setting and its variable.
    """
    value = get(key, keyword)
    if value is None or isinstance(value, bool):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(
        f"The setting {key!r} (env {ENV_VARS.get(key, '-')}) must be yes or no (1/0, "
        f"true/false), not {value!r}."
    )


def default_memo_dir() -> Path:
    """``$XDG_CACHE_HOME/bfdask/memo`` (``~/.cache/bfdask/memo``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "bfdask" / "memo"


def memo_dir() -> Path | None:
    """The Memoizer directory from the settings, or None when memoization is off."""
    value = get("bfdask.reader.memo-dir")
    if value is None:
        return default_memo_dir()
    if str(value).strip().lower() in ("", "none", "off", "false", "0"):
        return None
    return Path(str(value)).expanduser()
