"""The release: pyproject.toml reads it from here, the Dockerfile's VERSION follows it."""

__version__ = "0.1.0"
