"""Benchmarks for `make bench` (not part of `make test`), each run with `python -m`."""
