"""``python -m gitmoor.sandbox.serve``: the sandbox's API server in the foreground.

``gitmoor sandbox up`` runs this in the background (see ``process.py``); run directly, it
serves until interrupted. It creates the PKI if needed and writes ``DIR/kubeconfig`` for
the port it serves on, then serves; SIGTERM and Ctrl-C shut it down cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import Sequence
from pathlib import Path

from gitmoor.sandbox.pki import Pki, ensure_pki, write_kubeconfig
from gitmoor.sandbox.server import serve

HOST = "127.0.0.1"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m gitmoor.sandbox.serve",
        description="Serve the gitmoor sandbox's Kubernetes API on https://127.0.0.1:PORT.",
    )
    parser.add_argument("--dir", type=Path, required=True, help="state directory")
    parser.add_argument("--port", type=int, required=True, help="port to listen on")
    parser.add_argument("--nodes", type=int, default=1, help="number of simulated Nodes")
    args = parser.parse_args(argv)
    state_dir: Path = args.dir.resolve()
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    pki = ensure_pki(state_dir / "pki")
    write_kubeconfig(
        state_dir / "kubeconfig",
        server=f"https://{HOST}:{args.port}",
        ca_cert=pki.ca_cert,
        token=pki.token,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_until_terminated(state_dir, args.port, args.nodes, pki))


async def _serve_until_terminated(state_dir: Path, port: int, nodes: int, pki: Pki) -> None:
    # SIGTERM would end the process on the spot; as a cancellation, the server closes
    # its connections and its store first.
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await serve(state_dir, host=HOST, port=port, nodes=nodes, pki=pki)


if __name__ == "__main__":
    main()
