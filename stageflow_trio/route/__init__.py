"""Routing utilities: an empty namespace.

The reference's ``stageflow.route`` lists ``ConfidenceRouterStage``,
``EscalationPatternMatcher``, ``EscalationSignals`` and ``SemanticLoopDetector``
but ships none of the modules that would define them, so importing it fails.
This package imports cleanly and exports nothing (see docs/parity.md).
"""

from __future__ import annotations

__all__: list[str] = []
