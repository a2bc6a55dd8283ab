"""The one exception type for errors a user can cause."""

from __future__ import annotations


class NasplugError(ValueError):
    """A problem with user input (recipe, arch, path, data).

    The message names the offending field and what is allowed; the CLI prints it on one
    line and exits with status 2.
    """


def describe(exc: BaseException) -> str:
    """An error in one line for another process to report: a NasplugError's own message, any
    other error prefixed with its type."""
    return str(exc) if isinstance(exc, NasplugError) else f"{type(exc).__name__}: {exc}"


class WriteFailed(NasplugError, OSError):
    """A file could not be written (a full disk, a read-only folder): one line for the CLI,
    and still an ``OSError`` for code that handles I/O failures."""

    @classmethod
    def of(cls, path: object, exc: BaseException) -> WriteFailed:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return cls(f"{path}: cannot write it ({reason}); free disk space or fix the folder's permissions, "
                   "then resume (--resume)")


class UnloadableWeights(NasplugError):
    """A weights file that does not load into the model built for it (other tensors or
    shapes, a damaged file): callers that can say why (a recipe that builds another model
    than the one trained) catch this one."""
