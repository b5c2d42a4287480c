"""Error classes shared by the whole package.

User errors (bad input a person can fix) derive from :class:`UserInputError`, which is also a
``ValueError``; their message names the problem *and* the fix, in one line. The CLI prints them
without a traceback and exits non-zero. Everything else is a bug or an environment failure and keeps
its traceback.
"""

from __future__ import annotations


class StreamVQAError(Exception):
    """Base class of every error raised on purpose by streamvqa."""


class UserInputError(StreamVQAError, ValueError):
    """Bad input that the user can fix; the message says how."""


class SourceError(UserInputError):
    """A video source cannot be opened or read (missing file, corrupt data, dead URL, no video)."""


class ModelLoadError(UserInputError):
    """A model name or folder cannot be resolved or loaded (unknown id, offline, unsupported type)."""


class QuestionError(UserInputError):
    """A question cannot be asked as given (empty, too long for the model, time in the past)."""


class SessionFileError(UserInputError):
    """A saved session folder cannot be resumed (missing, damaged, another model or format version)."""


class SessionSaveError(UserInputError):
    """A session could not be saved (full disk, no permission); the previous save is left intact."""
