"""lightkube's async client on the sandbox: apply, list, a watch resumed after a restart."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lightkube import AsyncClient, KubeConfig
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import ConfigMap, Namespace

if TYPE_CHECKING:
    from sandbox_fixtures import Sandbox

pytest_plugins = ["sandbox_fixtures"]


def client(sandbox: Sandbox) -> AsyncClient:
    config = KubeConfig.from_file(str(sandbox.kubeconfig))
    return AsyncClient(config, field_manager="lightkube-test")


async def test_apply_list_and_resume_a_watch_after_restart(sandbox: Sandbox) -> None:
    kube = client(sandbox)
    await kube.apply(Namespace(metadata=ObjectMeta(name="apps")))
    for name in ("a", "b"):
        await kube.apply(
            ConfigMap(metadata=ObjectMeta(name=name, namespace="apps"), data={"v": "1"})
        )
    names = [cm.metadata.name async for cm in kube.list(ConfigMap, namespace="apps")]
    assert names == ["a", "b"]
    applied = await kube.apply(
        ConfigMap(metadata=ObjectMeta(name="a", namespace="apps"), data={"v": "2"})
    )
    assert applied.data == {"v": "2"}
    last_seen = applied.metadata.resourceVersion
    await kube.close()

    sandbox.stop()
    sandbox.start()
    kube = client(sandbox)
    await kube.apply(ConfigMap(metadata=ObjectMeta(name="c", namespace="apps"), data={"v": "1"}))
    seen = []
    async for event, obj in kube.watch(ConfigMap, namespace="apps", resource_version=last_seen):
        seen.append((event, obj.metadata.name))
        if obj.metadata.name == "c":
            break
    await kube.close()
    # Only what happened after the version last seen before the restart.
    assert seen == [("ADDED", "c")]
