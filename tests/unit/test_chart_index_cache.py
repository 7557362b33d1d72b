"""Repository indexes kept by digest, and how consumers find a chart source's artifact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gitmoor.controllers.chartsources import artifact_path, human_size, stored_index
from gitmoor.source.charts import ChartCache

INDEX = {
    "apiVersion": "v1",
    "generated": "2026-01-01T00:00:00Z",
    "entries": {"demo": [{"version": "1.1.0", "digest": "ab" * 32, "urls": ["demo-1.1.0.tgz"]}]},
}


def with_artifact(kind: str, digest: str) -> dict[str, Any]:
    return {"kind": kind, "status": {"artifact": {"revision": "r", "digest": digest}}}


def test_an_index_is_stored_under_the_digest_of_its_content(tmp_path: Path) -> None:
    cache = ChartCache(tmp_path)

    stored = cache.store_index(INDEX)
    reordered = cache.store_index(dict(reversed(list(INDEX.items()))))

    assert reordered == stored
    assert stored.path == cache.index_path(stored.digest)
    assert stored.size == stored.path.stat().st_size
    assert cache.load_index(stored.digest) == INDEX
    changed = cache.store_index({**INDEX, "generated": "2026-01-02T00:00:00Z"})
    assert changed.digest != stored.digest


def test_an_index_not_held_loads_as_none(tmp_path: Path) -> None:
    assert ChartCache(tmp_path).load_index("sha256:" + "0" * 64) is None
    with pytest.raises(ValueError, match="not a sha256 digest"):
        ChartCache(tmp_path).index_path("sha256:../../etc/passwd")


def test_consumers_find_the_index_and_the_chart(tmp_path: Path) -> None:
    cache = ChartCache(tmp_path)
    index = cache.store_index(INDEX)
    chart_digest = "sha256:" + "cd" * 32
    archive = cache.path_for(chart_digest)
    archive.parent.mkdir(parents=True, exist_ok=True)
    archive.write_bytes(b"chart")
    helm_repository = with_artifact("HelmRepository", index.digest)
    oci_repository = with_artifact("OCIRepository", chart_digest)

    assert artifact_path(helm_repository, cache) == index.path
    assert stored_index(helm_repository, cache) == INDEX
    assert artifact_path(oci_repository, cache) == archive
    assert stored_index(oci_repository, cache) is None


@pytest.mark.parametrize(
    "source",
    [
        None,
        {"kind": "HelmRepository", "status": {}},  # no artifact yet (or type: oci)
        with_artifact("HelmRepository", "sha256:" + "ef" * 32),  # not in this cache
        with_artifact("OCIRepository", "not-a-digest"),
        with_artifact("GitRepository", "sha256:" + "ef" * 32),
    ],
)
def test_no_artifact_here_is_none(tmp_path: Path, source: dict[str, Any] | None) -> None:
    cache = ChartCache(tmp_path)

    assert artifact_path(source, cache) is None
    assert stored_index(source, cache) is None


@pytest.mark.parametrize(
    ("size", "shown"), [(0, "0B"), (999, "999B"), (1234, "1.234kB"), (5_600_000, "5.6MB")]
)
def test_sizes_read_as_flux_prints_them(size: int, shown: str) -> None:
    assert human_size(size) == shown
