"""The three kinds of failure a consumer meets, and how each is told apart.

- transient: the infrastructure is briefly unreachable or a race was lost; redoing the same work
  cures it, so it is retried with backoff and never dead-lettered;
- fatal: the code or the database schema is wrong (a missing table or column, a statement the
  server refuses to parse, a missing privilege); every record would fail the same way, so the
  consumer stops and /readyz turns red instead of dead-lettering a whole topic because of a bug;
- poison: anything else raised while processing one record; that record alone is dead-lettered
  and the consumer moves on.
"""

from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError


class RetryableError(Exception):
    """Raised by a handler for a failure that redoing the batch cures (e.g. a lost race)."""


class FatalError(Exception):
    """Raised for a failure no retry and no dead letter can cure: stop consuming and alert."""


# PostgreSQL SQLSTATE classes that mean the statement or the schema is wrong, not the data:
# 42 syntax error or access rule violation (undefined table 42P01, undefined column 42703,
# undefined function 42883, insufficient privilege 42501), 3F invalid schema name,
# 0A feature not supported.
_FATAL_SQLSTATE_CLASSES = ("42", "3F", "0A")


def _sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE of a database error, through SQLAlchemy's and the driver's wrappers."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        code = getattr(current, "sqlstate", None) or getattr(current, "pgcode", None)
        if isinstance(code, str):
            return code
        current = getattr(current, "orig", None) or current.__cause__
    return None


def describe(error: BaseException) -> str:
    """One line for an operator: the error, with its SQLSTATE when the database raised it."""
    code = _sqlstate(error)
    return f"{error!r} [SQLSTATE {code}]" if code else repr(error)


def is_fatal(error: BaseException) -> bool:
    """The code or the schema is wrong: stop, do not retry, do not dead-letter."""
    if isinstance(error, FatalError):
        return True
    code = _sqlstate(error)
    return code is not None and code[:2] in _FATAL_SQLSTATE_CLASSES


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
    if is_fatal(error):
        return False
    return isinstance(error, transient)
