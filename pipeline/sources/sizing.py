"""Output frame size: an exact ``size=(width, height)`` or a ``max_side`` cap that keeps aspect ratio.

``max_side`` only ever shrinks: a frame whose longer side already fits is kept at its native size.
When it shrinks, the longer side becomes ``max_side`` rounded down to an even number and the shorter
side is scaled by the same factor and rounded to the nearest even number (at least 2), which is what
most video encoders and vision processors expect.
"""

from __future__ import annotations

from collections.abc import Callable

from pipeline.sources.messages import source_error

SizeRule = tuple[int, int] | Callable[[int, int], tuple[int, int]]
"""An exact ``(width, height)``, or a function of the native ``(width, height)`` that returns one
(lets a consumer that knows its model pick the decode size once the file's size is known)."""


def check_size_args(spec: str, size: SizeRule | None, max_side: int | None) -> None:
    """Validate ``size``/``max_side`` for the source ``spec`` (a callable ``size`` is checked later).

    Raises:
        SourceError: both given, a non-positive or non-integer value, or ``size`` not a pair.
    """
    if size is not None and max_side is not None:
        raise source_error(
            f"both size={size!r} and max_side={max_side!r} given for {spec}",
            "pass size=(width, height) for an exact size or max_side=N to keep the aspect ratio, not both",
        )
    if size is not None and not callable(size):
        ok = (
            isinstance(size, tuple | list)
            and len(size) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)
        )
        if not ok:
            raise source_error(
                f"invalid size={size!r} for {spec}: expected (width, height) in pixels",
                "pass two positive integers, e.g. size=(640, 360)",
            )
    if max_side is not None and (not isinstance(max_side, int) or isinstance(max_side, bool) or max_side < 2):
        raise source_error(
            f"invalid max_side={max_side!r} for {spec}: expected an integer >= 2",
            "pass e.g. max_side=448, or max_side=None to keep the native size",
        )


def _even(value: float) -> int:
    return max(2, 2 * round(value / 2))


def fit_size(
    width: int, height: int, size: tuple[int, int] | None = None, max_side: int | None = None
) -> tuple[int, int]:
    """Output ``(width, height)`` for a ``width`` x ``height`` input.

    Args:
        width: native width in pixels.
        height: native height in pixels.
        size: exact output ``(width, height)``; wins when given.
        max_side: cap on the longer side (see the module docstring); None keeps the native size.
    """
    if size is not None:
        return int(size[0]), int(size[1])
    if max_side is None or max(width, height) <= max_side:
        return int(width), int(height)
    longer = max(2, max_side - max_side % 2)
    scale = longer / max(width, height)
    if width >= height:
        return longer, _even(height * scale)
    return _even(width * scale), longer
