"""Benchmarks (`make bench`): each module prints its figures and its ratio to a baseline."""
