"""Judging students: evaluation suites, sampled or exact, and the report."""
