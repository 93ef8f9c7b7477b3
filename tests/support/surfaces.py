"""Concrete requests for the bridge's routes, as the cross-surface tests need them."""

from __future__ import annotations

from bridge.cloudtasks.rest import Route


def rest_path(route: Route, project: str = "app", queue: str = "q", task: str = "t1") -> str:
    """A path a v2beta2 REST route takes, naming ``project``/``queue``/``task``."""
    path = route.path.pattern.replace("(?P<name>", "").replace(")", "", 1).replace("\\", "")
    for kind, value in (
        ("projects/[^/]+/locations/[^/]+", f"projects/{project}/locations/us-central1"),
        ("/queues/[^/:]+", f"/queues/{queue}"),
        ("/tasks/[^/:]+", f"/tasks/{task}"),
    ):
        path = path.replace(kind, value)
    return path
