"""stageflow_trio.tools."""
