"""stageflow_trio.utils."""
