"""``Cluster.connect(on_request=...)`` sees every request the client sends, as sent."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx2

from gitmoor.cluster import Cluster

if TYPE_CHECKING:
    from sandbox_fixtures import Sandbox

pytest_plugins = ["sandbox_fixtures"]


async def test_every_request_reaches_the_hook(sandbox: Sandbox) -> None:
    seen: list[tuple[str, str]] = []

    async def record(request: httpx2.Request) -> None:
        seen.append((request.method, request.url.path))

    cluster = Cluster.connect(sandbox.kubeconfig, on_request=record)
    other = Cluster.connect(sandbox.kubeconfig)
    try:
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "hooked"}}
        await cluster.apply(namespace)
        assert await cluster.get("v1", "Namespace", "hooked") is not None
        assert await cluster.get("v1", "ConfigMap", "absent", "hooked") is None
        await cluster.list("v1", "ConfigMap", namespace="hooked")
        await other.get("v1", "Namespace", "hooked")
    finally:
        await cluster.close()
        await other.close()
    assert seen == [
        ("PATCH", "/api/v1/namespaces/hooked"),
        ("GET", "/api/v1/namespaces/hooked"),
        ("GET", "/api/v1/namespaces/hooked/configmaps/absent"),
        ("GET", "/api/v1/namespaces/hooked/configmaps"),
    ]
