"""stageflow_trio.agent re-exports the snapshot and its types, like the reference's."""

from __future__ import annotations

from typing import TYPE_CHECKING

import stageflow_trio.agent as agent
import stageflow_trio.context as context

if TYPE_CHECKING:
    from types import ModuleType


def test_agent_reexports_the_context_types(reference: ModuleType) -> None:
    import stageflow.agent as ref_agent

    assert sorted(agent.__all__) == sorted(ref_agent.__all__)
    for name in agent.__all__:
        assert getattr(agent, name) is getattr(context, name)
