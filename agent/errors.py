"""Errors a learner reads (one clear line each) and the input limits behind them.

Kept free of heavy imports so that the CLI starts fast.
"""

MAX_MESSAGE_BYTES = 32 * 1024


class CoachError(Exception):
    """Something the learner should read: one clear line."""


class ThreadBusy(CoachError):
    pass
