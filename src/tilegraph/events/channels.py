"""Channel and key names, in one place."""

from __future__ import annotations

from typing import Any


def execution_channel(execution_id: str) -> str:
    return f"exec:{execution_id}"


def execution_state_key(execution_id: str) -> str:
    return f"exec:{execution_id}:state"


def execution_cancel_key(execution_id: str) -> str:
    return f"exec:{execution_id}:cancel"


def transform_runs_channel(transform_id: str) -> str:
    return f"tf:{transform_id}:runs"


def transform_run_channels(run: dict[str, Any]) -> list[str]:
    """Where a transform run's states go besides its own channel: its transform's feed."""
    return [transform_runs_channel(str(run["transform_id"]))]
