"""Benchmarks: plain scripts that print one JSON line of figures each (``bench/run``)."""
