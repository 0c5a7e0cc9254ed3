"""Which failures retrying can cure, for consumer loops and HTTP handlers alike."""

from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError


class RetryableError(Exception):
    """Raised by a handler for a failure that redoing the batch cures (e.g. a lost race)."""


def is_transient(error: BaseException) -> bool:
    """Failures that retrying can cure: infrastructure briefly unreachable, contention."""
    transient: tuple[type[BaseException], ...] = (
        RetryableError,
        OSError,
        TimeoutError,
        KafkaConnectionError,
        KafkaTimeoutError,
    )
    try:
        import asyncpg
        from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

        transient += (
            OperationalError,
            InterfaceError,
            asyncpg.PostgresConnectionError,
            asyncpg.CannotConnectNowError,
            asyncpg.SerializationError,
            asyncpg.DeadlockDetectedError,
        )
        if isinstance(error, DBAPIError) and error.connection_invalidated:
            return True
        if isinstance(error, DBAPIError) and isinstance(error.orig, Exception):
            cause = getattr(error.orig, "__cause__", None)
            if cause is not None and isinstance(cause, transient):
                return True
    except ImportError:  # a service without a database
        pass
    return isinstance(error, transient)
