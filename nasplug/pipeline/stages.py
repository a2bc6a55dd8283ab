"""The pipeline's stages; importing this module registers them with nasplug.pipeline."""

from nasplug.glue import stage as glue_stage  # noqa: F401
from nasplug.pipeline import report, search, train  # noqa: F401
