"""Sandboxed execution of user Python (cards and transforms).

A warm zygote under bubblewrap (or plain processes in ``process`` mode) forks one child per
job ahead of time; see :mod:`tilegraph.executor.sandbox`. This package never touches AWS or
GraphQL: it only runs code on Arrow tables and returns HTML or a table.
"""

from .bwrap import bwrap_available
from .jobs import CardJob, CardOutput, SandboxResult, TransformJob, TransformOutput
from .limits import CARD_LIMITS, SandboxLimits, job_limits
from .memory_cap import CapMode
from .sandbox import Sandbox, SandboxError

__all__ = [
    "CARD_LIMITS",
    "CapMode",
    "CardJob",
    "CardOutput",
    "Sandbox",
    "SandboxError",
    "SandboxLimits",
    "SandboxResult",
    "TransformJob",
    "TransformOutput",
    "bwrap_available",
    "job_limits",
]
