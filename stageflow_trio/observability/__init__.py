"""stageflow_trio.observability."""
