"""stageflow_trio.helpers."""
