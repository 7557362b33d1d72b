import base64

from gitmoor.diff import REDACTED, REDACTED_CHANGED, Change, diff_objects, redact, render_markdown
from gitmoor.manifests import KubeObject, ObjectKey, key_of


def deployment(tag: str) -> KubeObject:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "apps"},
        "spec": {"template": {"spec": {"containers": [{"name": "web", "image": f"web:{tag}"}]}}},
    }


def secret(value: str) -> KubeObject:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "creds", "namespace": "apps"},
        "data": {"password": base64.b64encode(value.encode()).decode(), "user": "YWRtaW4="},
    }


def keyed(*objects: KubeObject) -> dict[ObjectKey, tuple[str | None, KubeObject]]:
    return {key_of(o): ("Kustomization flux-system/apps", o) for o in objects}


def test_unchanged_objects_give_no_diff() -> None:
    assert diff_objects(keyed(deployment("1")), keyed(deployment("1"))) == []


def test_changed_added_removed() -> None:
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "apps"},
    }
    changes = diff_objects(keyed(deployment("1"), config), keyed(deployment("2"), secret("s")))
    assert [(c.key.kind, c.change) for c in changes] == [
        ("ConfigMap", Change.REMOVED),
        ("Secret", Change.ADDED),
        ("Deployment", Change.CHANGED),
    ]
    changed = changes[2]
    assert "-        image: web:1" in changed.text
    assert "+        image: web:2" in changed.text
    assert changed.origin == "Kustomization flux-system/apps"


def test_secret_values_never_shown_but_changes_are() -> None:
    before, after = secret("hunter2"), secret("correct horse")
    changes = diff_objects(keyed(before), keyed(after))
    assert len(changes) == 1
    text = changes[0].text
    for value in ("hunter2", "correct horse"):
        assert base64.b64encode(value.encode()).decode() not in text
        assert value not in text
    assert f"+  password: '{REDACTED_CHANGED}'" in text
    changed_lines = [
        line for line in text.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")
    ]
    assert changed_lines == ["-  password: <redacted>", f"+  password: '{REDACTED_CHANGED}'"]


def test_redact_leaves_other_kinds_alone() -> None:
    obj = deployment("1")
    assert redact(obj) is obj
    assert redact(secret("x"))["data"] == {"password": REDACTED, "user": REDACTED}


def test_markdown_summary() -> None:
    changes = diff_objects(keyed(deployment("1")), keyed(deployment("2")))
    text = render_markdown(changes)
    assert text.startswith("### gitmoor diff: 1 changed, 0 added, 0 removed")
    assert "| changed | `Deployment.apps/apps/web` |" in text
    assert "```diff" in text
    assert render_markdown([]).endswith("No object would change.\n")
