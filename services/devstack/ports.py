"""Port checks for the local stack: fail early with a readable message, never a bind traceback."""

import socket

from services.devstack.errors import DevStackError

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """A port nobody listens on right now, for servers the test suite starts."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def is_listening(port: int, host: str = LOOPBACK, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def ensure_port_free(port: int, what: str, host: str = LOOPBACK) -> None:
    """Raise DevStackError naming the port and who wanted it if something already listens there."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            raise DevStackError(
                f"port {port} is in use, so {what} cannot start there; "
                f"stop whatever listens on it or choose another port"
            ) from None
