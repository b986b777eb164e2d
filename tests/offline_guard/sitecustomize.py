"""Network guard for the offline tests where ``unshare -n`` is unavailable (not root).

Put this folder on PYTHONPATH and every Python process started with that environment
(the runner, papermill, each Jupyter kernel) refuses to resolve or connect to anything
but loopback and Unix sockets. ``tests/offline.py`` uses it only as a fallback: on CI,
which runs as root, notebooks run in a network namespace with no network at all.
"""

import sys

_LOCAL = {"127.0.0.1", "::1", "localhost", "0.0.0.0", ""}


def _offline_guard(event, args):
    if event == "socket.getaddrinfo":
        host = args[0]
        host = host.decode() if isinstance(host, bytes) else host
        if host not in _LOCAL and host is not None:
            raise OSError(
                f"AIGC Lab offline guard: name lookup of {host!r} refused (network disabled)"
            )
    elif event == "socket.connect":
        address = args[1]
        if isinstance(address, tuple) and address and address[0] not in _LOCAL:
            raise OSError(
                f"AIGC Lab offline guard: connection to {address!r} refused (network disabled)"
            )


sys.addaudithook(_offline_guard)
