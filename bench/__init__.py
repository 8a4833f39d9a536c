"""Benchmarks for the issue's performance targets: `make bench` runs `python -m bench.run`."""
