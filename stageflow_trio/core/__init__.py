"""stageflow_trio.core."""
