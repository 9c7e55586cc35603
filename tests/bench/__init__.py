"""Benchmarks: figures printed side by side, never pass/fail (this machine is noisy).

Run from the repository's root, e.g. `make bench-grading` (= `.venv/bin/python -m
tests.bench.grading`). They live beside the tests because several drive the tests'
own fixtures (the hub driver, the realistic wrong answers); nothing shipped imports them.
"""
