"""stageflow_trio.stages."""
