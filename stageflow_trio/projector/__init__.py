"""Projection of outbound websocket messages (see :mod:`stageflow_trio.projector.service`)."""

from __future__ import annotations

from .service import ProjectorService as ProjectorService
from .service import WSMessageProjector as WSMessageProjector
from .service import WSMetadata as WSMetadata
from .service import WSOutboundMessage as WSOutboundMessage
from .service import WSStatusUpdatePayload as WSStatusUpdatePayload

__all__ = [
    "ProjectorService",
    "WSMessageProjector",
    "WSMetadata",
    "WSOutboundMessage",
    "WSStatusUpdatePayload",
]
