"""One-line user error messages for frame sources: ``"<problem> — <fix>"``.

Every :class:`~pipeline.errors.SourceError` raised by this package goes through
:func:`source_error`, so messages have one shape: what is wrong, an em dash, what to do about it, on a
single line (the CLI prints them without a traceback).
"""

from __future__ import annotations

from pipeline.errors import SourceError


def one_line(text: object, limit: int = 300) -> str:
    """Collapse ``text`` to a single line of at most ``limit`` characters.

    Args:
        text: anything with a ``str()``; newlines and runs of whitespace become single spaces.
        limit: maximum length; longer text is cut and ends with ``"..."``.
    """
    flat = " ".join(str(text).split())
    if len(flat) > limit:
        flat = flat[: max(0, limit - 3)] + "..."
    return flat


def source_error(problem: str, fix: str) -> SourceError:
    """Build a :class:`SourceError` whose message is ``"<problem> — <fix>"`` on one line.

    Args:
        problem: what is wrong, naming the file or URL.
        fix: what the user should do about it.
    """
    return SourceError(f"{one_line(problem, 400)} — {one_line(fix, 300)}")
