"""Reliability campaigns: faults, crashes and bad input never lose data and never duplicate it in Xero.

`make chaos` runs them at full size (`python -m tests.chaos.report`); `make test` runs them small.
"""
