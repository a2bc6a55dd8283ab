"""The pipeline's stages; importing this package registers them with nasplug.pipeline."""

from nasplug.stages import glue, report, search, train  # noqa: F401
