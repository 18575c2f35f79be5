"""`coach serve`: the JSON API and the pages, for one learner or a whole cohort.

Nothing here keeps per-user state in memory: sessions, threads and leases live in the
database, so any number of worker processes can serve the same learners.
"""
