"""Hardening interceptors: catch stages that mutate their input, watch the context's size.

Both are meant for development and high-reliability set-ups (each serializes
the context twice per stage). Add them to a graph's interceptor list.

Where the snapshot comes from: ``snapshot_getter(ctx)`` when given, else
``ctx.snapshot`` when the context has one (a StageContext), else
``ctx.data["snapshot"]`` (the place a legacy run keeps the snapshot it hands
to its stages). The reference read ``ctx.snapshot`` only, which a
PipelineContext does not have, so its checks never ran.
"""

from __future__ import annotations

from ._interceptors_hardening import SNAPSHOT_DATA_KEY as SNAPSHOT_DATA_KEY
from ._interceptors_hardening import ContextSizeInterceptor as ContextSizeInterceptor
from ._interceptors_hardening import ContextSizeMetric as ContextSizeMetric
from ._interceptors_hardening import ImmutabilityInterceptor as ImmutabilityInterceptor
from ._interceptors_hardening import ImmutabilityViolationError as ImmutabilityViolationError

__all__ = [
    "SNAPSHOT_DATA_KEY",
    "ContextSizeInterceptor",
    "ContextSizeMetric",
    "ImmutabilityInterceptor",
    "ImmutabilityViolationError",
]
