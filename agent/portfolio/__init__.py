"""The portfolio a hiring manager reads: what the learner published, how each claim is
known, the exported site, the share link, the readiness report and deployment re-checks."""
