"""`optimize --ray` to a cluster that is not there, or refuses: one line, no traceback, nothing prepared."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from main import main
from research.ray_connect import check_reachable, endpoint, init_ray


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_endpoint_parses_addresses_and_refuses_nonsense() -> None:
    assert endpoint("auto") is None
    assert endpoint("10.0.0.5:6379") == ("10.0.0.5", 6379)
    assert endpoint("ray://head:10001") == ("head", 10001)
    with pytest.raises(ValueError, match="host:port"):
        endpoint("nowhere")


def test_nothing_listening_is_one_line_that_says_how_to_connect() -> None:
    port = _free_port()
    with pytest.raises(ValueError) as err:
        check_reachable(f"127.0.0.1:{port}")
    text = str(err.value)
    assert "\n" not in text and f"127.0.0.1:{port}" in text and "ray start --head" in text


def test_optimize_cli_refuses_before_loading_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = _free_port()
    storage = tmp_path / "o.db"
    rc = main(
        [
            "optimize",
            "--data",
            str(tmp_path / "missing.parquet"),
            "--ray",
            f"127.0.0.1:{port}",
            "--trials",
            "1",
            "--storage",
            str(storage),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and "cannot reach the Ray cluster" in err and "Traceback" not in err
    assert not storage.exists()


class _RefusingRay:
    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def init(self, **kwargs: object) -> None:
        raise self.exc


def test_an_authenticated_cluster_that_refuses_is_one_line() -> None:
    with socket.socket() as server:  # something listens, so the reachability check passes
        server.bind(("127.0.0.1", 0))
        server.listen()
        address = f"127.0.0.1:{server.getsockname()[1]}"
        refusing = _RefusingRay(ConnectionError("Unauthenticated: invalid auth token\nlong Ray detail\nmore"))
        with pytest.raises(ValueError) as err:
            init_ray(refusing, address)
    text = str(err.value)
    assert "\n" not in text and "authentication" in text and "RAY_AUTH_TOKEN" in text
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with pytest.raises(ValueError, match="could not connect to the Ray cluster"):
            init_ray(_RefusingRay(RuntimeError("GCS timed out")), f"127.0.0.1:{server.getsockname()[1]}")
