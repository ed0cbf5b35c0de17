"""stageflow_trio.pipeline."""
