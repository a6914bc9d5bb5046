"""`make bench` (`python -m bench.run`): the import and the push at 1,000 / 10,000 / 100,000 contacts against the
sandbox, on SQLite and PostgreSQL, timed per stage; writes docs/BENCHMARKS.md and bench/results.json."""
