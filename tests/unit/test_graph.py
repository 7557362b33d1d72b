import pytest

from gitmoor.errors import GraphError
from gitmoor.graph import Node, NodeId, order


def ks(name: str, *deps: str) -> Node:
    return Node(
        NodeId("Kustomization", "flux-system", name),
        tuple(NodeId("Kustomization", "flux-system", d) for d in deps),
        file=f"clusters/{name}.yaml",
    )


def test_waves_follow_dependencies_and_sort_names() -> None:
    waves = order(
        [ks("apps", "platform"), ks("platform", "infra"), ks("infra"), ks("obs", "platform")]
    )
    assert [[n.name for n in wave] for wave in waves] == [["infra"], ["platform"], ["apps", "obs"]]


def test_missing_dependency_names_both_ends() -> None:
    with pytest.raises(GraphError) as caught:
        order([ks("apps", "platfrom")])
    error = caught.value
    assert "Kustomization flux-system/platfrom" in error.message
    assert error.location.object == "Kustomization flux-system/apps"
    assert error.location.field == "spec.dependsOn[0]"
    assert error.location.file == "clusters/apps.yaml"


def test_cycle_is_named_in_full() -> None:
    with pytest.raises(GraphError) as caught:
        order([ks("a", "b"), ks("b", "c"), ks("c", "a"), ks("d")])
    message = caught.value.message
    assert message.startswith("dependsOn cycle: ")
    for name in ("a", "b", "c"):
        assert f"Kustomization flux-system/{name}" in message
    assert "flux-system/d" not in message


def test_self_dependency_is_a_cycle() -> None:
    with pytest.raises(GraphError, match="cycle"):
        order([ks("a", "a")])
