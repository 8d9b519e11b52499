"""Connecting `optimize --ray ADDRESS` to a Ray cluster, with one plain line when it cannot.

`ray.init(address=...)` to a port where nothing listens retries for a minute or more and then
raises a traceback-sized error; an authenticated cluster refuses a client without its token. Both
become a ValueError whose message says what failed and how to connect, which `main.py` prints as
one line.
"""

from __future__ import annotations

import socket
from typing import Any

HOW_TO = (
    "start a cluster with `ray start --head` (it prints the address), pass that host:port or 'auto' "
    "on a cluster node, set RAY_AUTH_TOKEN if the cluster uses token authentication, "
    "or drop --ray to score the trials locally (--workers N)"
)


def endpoint(address: str) -> tuple[str, int] | None:
    """host and port of a 'host:port' or 'ray://host:port' address; None for 'auto' (Ray finds it)."""
    if address in ("auto", "local"):
        return None
    text = address.removeprefix("ray://")
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--ray wants 'auto' or host:port, e.g. 10.0.0.5:6379 (got {address!r})")
    return host.strip("[]"), int(port)


def check_reachable(address: str, timeout: float = 3.0) -> None:
    """Refuse at once when nothing accepts connections at the address (instead of Ray's long retry)."""
    where = endpoint(address)
    if where is None:
        return
    try:
        with socket.create_connection(where, timeout=timeout):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        if isinstance(exc, TimeoutError | socket.timeout):
            reason = f"no answer within {timeout:g} s"
        raise ValueError(f"cannot reach the Ray cluster at {address} ({reason}): {HOW_TO}") from None


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


def init_ray(ray: Any, address: str, **kwargs: Any) -> None:
    """`ray.init(address=...)`, or a ValueError of one line saying what failed and how to connect."""
    check_reachable(address)
    try:
        ray.init(address=address, logging_level="ERROR", **kwargs)
    except Exception as exc:  # ConnectionError, RuntimeError, an auth error: Ray's own types vary by version
        words = first_line(exc).rstrip(".")
        lowered = words.lower()
        what = (
            "the Ray cluster refused the connection (authentication)"
            if any(w in lowered for w in ("auth", "token", "unauthenticated", "permission"))
            else "could not connect to the Ray cluster"
        )
        raise ValueError(f"{what} at {address}: {words}; {HOW_TO}") from None


def connect(address: str) -> Any:
    """Import Ray and connect to the cluster at `address`; returns the `ray` module (shut it down after)."""
    check_reachable(address)
    try:
        import ray
    except ImportError:
        raise ValueError("--ray needs Ray: pip install '.[ray]'") from None
    init_ray(ray, address)
    return ray
