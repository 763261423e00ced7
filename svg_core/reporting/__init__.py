"""Reporting: RESULTS.md tables and plots from logged runs, speed benchmarks, and model cards for shipped checkpoints."""
