"""stageflow_trio.context."""
