"""stageflow_trio.contracts."""
