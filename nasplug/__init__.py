"""nasplug: neural architecture search with pluggable spaces, tasks and strategies.

The concepts (``nasplug.arch``, ``space``, ``supernet``, ``task``, ``strategy``,
``evaluate``, ``search``) are plain modules; importing ``nasplug`` itself imports nothing heavy.
"""

__version__ = "0.2.0"
