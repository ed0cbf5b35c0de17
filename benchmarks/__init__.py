"""Benchmarks of stageflow_trio side by side with stageflow-core 0.9.1 (run on demand)."""
