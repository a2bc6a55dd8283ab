"""The shipped recipes, installed as ``nasplug.recipes``: ``nasplug run NAME`` finds them by name."""
