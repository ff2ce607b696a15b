"""Benchmarks: publisher against the baselines and the tools people would use instead.

Each module measures one target of issue 8 and prints its figures with the
ratio to a baseline measured in the same run (``make bench`` runs them all;
``BENCH_FULL=1`` uses the issue's sizes). See ``bench/RESULTS.md``.
"""
