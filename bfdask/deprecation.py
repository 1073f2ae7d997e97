"""Old call forms that keep working for one release, with a ``FutureWarning`` saying the new."""

from __future__ import annotations

import functools
import warnings
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

if TYPE_CHECKING:
    from collections.abc import Callable

P = ParamSpec("P")
R = TypeVar("R")


def keyword_selectors(*names: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Make the parameters ``names`` after ``path`` keyword-only, as tifffile's selectors are,
    while positional calls of the previous release still work with a ``FutureWarning``.

    The decorated function declares them keyword-only (``def open(path, *, series=0, ...)``);
    ``open(path, 3)`` then warns and means ``open(path, series=3)``.
    """

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def call(path: Any, *args: Any, **kwargs: Any) -> R:
            if args:
                if len(args) > len(names):
                    raise TypeError(
                        f"{func.__name__}() takes 1 positional argument (path); pass "
                        f"{', '.join(f'{n}=...' for n in names)} by keyword"
                    )
                given = names[: len(args)]
                warnings.warn(
                    f"{func.__name__}(path, {', '.join(given)}) by position is deprecated and "
                    f"will stop working in the next release: write "
                    f"{func.__name__}(path, {', '.join(f'{n}=...' for n in given)}).",
                    FutureWarning,
                    stacklevel=2,
                )
                for name, value in zip(given, args, strict=True):
                    if name in kwargs:
                        raise TypeError(f"{func.__name__}() got multiple values for {name!r}")
                    kwargs[name] = value
            return cast("Callable[..., R]", func)(path, **kwargs)

        return cast("Callable[P, R]", call)

    return decorate
