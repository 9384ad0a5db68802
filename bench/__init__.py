"""SEV's benchmarks: `python -m bench [--quick]` (docs/PERFORMANCE.md)."""
