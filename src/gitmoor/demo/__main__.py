"""``python -m gitmoor.demo``: build the example homelab, then diff a one-line change to it.

Starts a real OCI registry and a real HTTP chart repository on 127.0.0.1, publishes the
example's charts, runs ``gitmoor build --summary`` on ``examples/homelab``, then commits an
image-tag bump to a scratch copy of the repository and runs ``gitmoor diff`` on it, and
finally ``gitmoor up --once``: a sandbox cluster, the controllers, the repository applied.
Everything it starts is stopped and removed at the end.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from gitmoor.cli.common import EXIT_CHANGES, EXIT_OK
from gitmoor.cli.main import main as gitmoor
from gitmoor.demo.homelab import DEMO_AGE_KEY, HOMELAB_DIR, ROOT_PATH, serve_example_charts
from gitmoor.manifests import dump_all

CHANGED_FILE = "apps/llm-ollama/deployment.yaml"
OLD_IMAGE, NEW_IMAGE = "ollama/ollama:0.15.2", "ollama/ollama:0.15.4"


def _run(*argv: str) -> int:
    print(f"\n$ gitmoor {' '.join(argv)}", file=sys.stderr, flush=True)
    try:
        gitmoor(list(argv))
    except SystemExit as exc:
        return int(exc.code or 0)
    return EXIT_OK


def _git(repository: Path, *argv: str) -> None:
    subprocess.run(
        [
            "git",
            "-C",
            str(repository),
            "-c",
            "user.name=gitmoor demo",
            "-c",
            "user.email=demo@gitmoor.invalid",
            *argv,
        ],
        check=True,
        capture_output=True,
    )


def _scratch_repository(destination: Path) -> Path:
    """A Git copy of the example with two commits: as shipped, then one image tag bumped."""
    shutil.copytree(HOMELAB_DIR, destination)
    _git(destination, "init", "-q", "-b", "production")
    _git(destination, "add", "-A")
    _git(destination, "commit", "-q", "-m", "homelab as shipped")
    changed = destination / CHANGED_FILE
    text = changed.read_text()
    if OLD_IMAGE not in text:
        raise SystemExit(f"demo: {CHANGED_FILE} no longer uses {OLD_IMAGE}")
    changed.write_text(text.replace(OLD_IMAGE, NEW_IMAGE, 1))
    _git(destination, "commit", "-q", "-am", f"ollama: {OLD_IMAGE} -> {NEW_IMAGE}")
    return destination


def run() -> int:
    with tempfile.TemporaryDirectory(prefix="gitmoor-demo-") as scratch:
        work = Path(scratch)
        print(
            "demo: publishing the example charts to a registry and a chart repository on 127.0.0.1",
            file=sys.stderr,
            flush=True,
        )
        with serve_example_charts(work / "charts") as charts:
            settings = work / "cluster-settings.yaml"
            settings.write_text(dump_all([charts.cluster_settings]))
            common = (
                "--path",
                ROOT_PATH,
                "--objects",
                str(settings),
                "--decryption-key",
                str(DEMO_AGE_KEY),
            )
            built = _run("build", str(HOMELAB_DIR), "--summary", *common)
            copy = _scratch_repository(work / "homelab")
            diffed = _run("diff", str(copy), "--base", "HEAD~1", "--head", "HEAD", *common)
        sandbox_dir = str(work / "sandbox")
        try:
            brought_up = _run("up", "--once", "--dir", sandbox_dir)
        finally:
            _run("sandbox", "down", "--dir", sandbox_dir)
    if built != EXIT_OK or diffed != EXIT_CHANGES or brought_up != EXIT_OK:
        print(
            f"demo: failed (build exit {built}, diff exit {diffed}, up exit {brought_up})",
            file=sys.stderr,
        )
        return 1
    print(
        "\ndemo: done — the build rendered every object, the diff shows the one change, and "
        "`gitmoor up` brought the repository into a sandbox from Git",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(run())
