"""Resource limits for one sandboxed run; the caller picks them per kind of job."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

MiB = 1024 * 1024
GiB = 1024 * MiB


@dataclass(frozen=True)
class SandboxLimits:
    """Per-job limits, enforced in the child (rlimits) and by the worker (wall clock, output).

    ``memory_bytes`` is RLIMIT_AS: address space, not RSS, so it must leave room for the
    ~1.5 GiB the preloaded pandas/pyarrow/plotly stack maps before user code runs.
    ``max_processes`` counts threads too (RLIMIT_NPROC), and pyarrow starts a few.
    """

    wall_seconds: float
    cpu_seconds: int
    memory_bytes: int
    max_processes: int
    max_file_bytes: int
    max_open_files: int
    max_output_bytes: int
    # A card's table (HTMLResult.table) as an Arrow IPC stream, beside its HTML.
    max_table_bytes: int = 16 * MiB

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if value <= 0:
                raise ValueError(f"SandboxLimits.{name} must be positive, got {value!r}")
        if self.max_open_files < 16:
            raise ValueError("SandboxLimits.max_open_files must be at least 16")
        if self.max_processes < 4:
            raise ValueError("SandboxLimits.max_processes must be at least 4 (threads count)")

    def to_wire(self) -> dict[str, Any]:
        return asdict(self)


def job_limits(
    wall_seconds: float,
    memory_bytes: int,
    output_bytes: int,
    *,
    file_bytes: int,
    table_bytes: int = 16 * MiB,
) -> SandboxLimits:
    """Limits for one kind of job from its settings; the rest are the same for every job."""
    return SandboxLimits(
        wall_seconds=wall_seconds,
        cpu_seconds=max(1, int(wall_seconds)),
        memory_bytes=memory_bytes,
        max_processes=64,
        max_file_bytes=file_bytes,
        max_open_files=256,
        max_output_bytes=output_bytes,
        max_table_bytes=table_bytes,
    )


CARD_LIMITS = job_limits(10.0, 4 * GiB, 5 * MiB, file_bytes=64 * MiB)
"""DESIGN.md defaults for cards: 10 s, 5 MB of HTML (and a 16 MiB table)."""
