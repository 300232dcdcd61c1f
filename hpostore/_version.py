"""The package version, in a leaf module that every part may import without a cycle."""

__version__ = "0.1.0"
