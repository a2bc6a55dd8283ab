"""The one exception type for errors a user can cause."""

from __future__ import annotations


class NasplugError(ValueError):
    """A problem with user input (recipe, arch, path, data).

    The message names the offending field and what is allowed; the CLI prints it on one
    line and exits with status 2.
    """
