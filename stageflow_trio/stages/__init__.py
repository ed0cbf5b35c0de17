"""The legacy pipeline context, stage inputs, ports and results."""

from __future__ import annotations

from .context import PipelineContext as PipelineContext
from .inputs import StageInputs as StageInputs
from .inputs import UndeclaredDependencyError as UndeclaredDependencyError
from .inputs import create_stage_inputs as create_stage_inputs
from .ports import AudioPorts as AudioPorts
from .ports import CorePorts as CorePorts
from .ports import LLMPorts as LLMPorts
from .ports import create_audio_ports as create_audio_ports
from .ports import create_core_ports as create_core_ports
from .ports import create_llm_ports as create_llm_ports
from .result import StageError as StageError
from .result import StageResult as StageResult

__all__ = [
    "AudioPorts",
    "CorePorts",
    "LLMPorts",
    "PipelineContext",
    "StageError",
    "StageInputs",
    "StageResult",
    "UndeclaredDependencyError",
    "create_audio_ports",
    "create_core_ports",
    "create_llm_ports",
    "create_stage_inputs",
]
