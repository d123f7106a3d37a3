"""Benchmark scripts (SPEC §14); run each as a script, see its docstring."""
