"""The pipeline's stages; importing this package registers them with nasplug.pipeline."""

from nasplug.stages import report, search  # noqa: F401
