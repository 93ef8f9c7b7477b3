"""Task Queue Bridge: the App Engine Task Queue REST API v1beta2 over Redis or Cloud Tasks."""

from bridge.app import create_app

__all__ = ["create_app"]
