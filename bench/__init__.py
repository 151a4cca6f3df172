"""Benchmarks of sagemaker-ssm-guard (issue 7): AWS calls per event, the sweep at scale, Cloud
Custodian side by side, cold start and package sizes. Run with `make bench`; results go to
`bench/results/latest.json` and the tables of `docs/BENCHMARKS.md`.

Nothing here is a test: numbers are measured and reported, never asserted.
"""
