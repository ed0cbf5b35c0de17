"""stageflow_trio.events."""
