"""Ports: the capabilities (db, callbacks, providers) injected into stages.

Each domain gets its own small frozen bundle so a stage receives only what it
needs: :class:`CorePorts` (persistence, status callbacks), :class:`LLMPorts`
(language models, token streaming) and :class:`AudioPorts` (speech providers,
audio streaming). Every field defaults to None. The ``create_*_ports``
factories are keyword-only spellings of the constructors.

Under trio, :attr:`CorePorts.db_lock` is a :class:`trio.Lock` (the reference
uses an ``asyncio.Lock``).
"""

from __future__ import annotations

from ._ports import AudioPorts as AudioPorts
from ._ports import CorePorts as CorePorts
from ._ports import LLMPorts as LLMPorts
from ._ports import create_audio_ports as create_audio_ports
from ._ports import create_core_ports as create_core_ports
from ._ports import create_llm_ports as create_llm_ports

__all__ = [
    "AudioPorts",
    "CorePorts",
    "LLMPorts",
    "create_audio_ports",
    "create_core_ports",
    "create_llm_ports",
]
