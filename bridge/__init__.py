"""Task Queue Bridge: the App Engine Task Queue REST API v1beta2 over Redis or Cloud Tasks."""

from bridge.app import create_app

#: The release: pyproject.toml reads it from here, the Dockerfile's VERSION follows it.
__version__ = "0.1.0"

__all__ = ["__version__", "create_app"]
