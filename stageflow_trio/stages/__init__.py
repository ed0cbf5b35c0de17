"""The legacy pipeline context, stage inputs, ports and results."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stageflow_trio._lazy import lazy_exports

if TYPE_CHECKING:
    from .context import PipelineContext as PipelineContext
    from .inputs import StageInputs as StageInputs
    from .inputs import UndeclaredDependencyError as UndeclaredDependencyError
    from .inputs import create_stage_inputs as create_stage_inputs
    from .payloads import StagePayloadResult as StagePayloadResult
    from .payloads import cancel_output as cancel_output
    from .payloads import fail_output as fail_output
    from .payloads import ok_output as ok_output
    from .payloads import payload_from_inputs as payload_from_inputs
    from .payloads import payload_from_results as payload_from_results
    from .payloads import summary_from_output as summary_from_output
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
    "StagePayloadResult",
    "StageResult",
    "UndeclaredDependencyError",
    "cancel_output",
    "create_audio_ports",
    "create_core_ports",
    "create_llm_ports",
    "create_stage_inputs",
    "fail_output",
    "ok_output",
    "payload_from_inputs",
    "payload_from_results",
    "summary_from_output",
]

# Hidden from type checkers, which read the imports above: a visible module
# __getattr__ would make every misspelt name `Any` instead of an error.
if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            ".context": "PipelineContext",
            ".inputs": "StageInputs UndeclaredDependencyError create_stage_inputs",
            ".payloads": (
                "StagePayloadResult cancel_output fail_output ok_output payload_from_inputs "
                "payload_from_results summary_from_output"
            ),
            ".ports": (
                "AudioPorts CorePorts LLMPorts create_audio_ports create_core_ports create_llm_ports"
            ),
            ".result": "StageError StageResult",
        },
    )
