"""Short forms of the calls tests make through the Google API client."""

from __future__ import annotations

import base64
import time
from typing import Any

PROJECT = "s~demo-app"
QUEUE = "work"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()


def now_us() -> int:
    return int(time.time() * 1_000_000)


def insert(api: Any, queue: str = QUEUE, project: str = PROJECT, **task: Any) -> dict[str, Any]:
    task.setdefault("payloadBase64", b64(b"payload"))
    result: dict[str, Any] = api.tasks().insert(project=project, taskqueue=queue, body=task).execute()
    return result


def lease(
    api: Any, num: int = 10, secs: int = 60, queue: str = QUEUE, project: str = PROJECT, **options: Any
) -> list[Any]:
    result = api.tasks().lease(project=project, taskqueue=queue, numTasks=num, leaseSecs=secs, **options).execute()
    assert result["kind"] == "taskqueue#tasks"
    items: list[Any] = result.get("items", [])
    return items


def listed(api: Any, queue: str = QUEUE, project: str = PROJECT) -> list[Any]:
    result = api.tasks().list(project=project, taskqueue=queue).execute()
    assert result["kind"] == "taskqueues#tasks"
    items: list[Any] = result.get("items", [])
    return items


def ids(tasks: list[dict[str, Any]]) -> list[str]:
    return [task["id"] for task in tasks]


def stats(api: Any, queue: str = QUEUE, project: str = PROJECT) -> dict[str, Any]:
    result: dict[str, Any] = api.taskqueues().get(project=project, taskqueue=queue, getStats=True).execute()
    return result["stats"]  # type: ignore[no-any-return]
