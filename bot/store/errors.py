"""One error type for every backend, so callers need not know which database they talk to."""


class StoreError(Exception):
    """The database failed (disk full, locked too long, connection lost, a constraint broken).

    The backend's own exception is the `__cause__`. Nothing half-written stays: a failed
    transaction was rolled back.
    """
