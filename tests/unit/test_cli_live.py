"""The pure parts of get, reconcile, events and tree: times, tables, readings, the tree."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from gitmoor.apply.inventory import ObjectRef
from gitmoor.cli.common import Output
from gitmoor.cli.events_cmd import Selection, Target, event_row, event_time, last_seen, parse_for
from gitmoor.cli.get_cmd import rows, select
from gitmoor.cli.history_cmd import (
    NOT_IN_HELM,
    ONLY_IN_HELM,
    Revision,
    compare,
    records,
    snapshots,
    table_rows,
)
from gitmoor.cli.live import helm_kubeconfig
from gitmoor.cli.reconcile_cmd import handled, outcome, requested_at, static
from gitmoor.cli.resources import (
    GIT_REPOSITORY,
    HELM_RELEASE,
    HELM_REPOSITORY,
    KUSTOMIZATION,
    matches_status,
    parse_status_selector,
    source_ref,
    summarize,
)
from gitmoor.cli.tables import plain_table, print_table, truncate_hex
from gitmoor.cli.tree_cmd import Node, as_data, render
from gitmoor.errors import InputError
from gitmoor.releases import Release

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
SHA = "3f2a1c9e8d7b6a5f4e3d2c1b0a9f8e7d6c5b4a39"


def stamp(ago: timedelta) -> str:
    return (NOW - ago).strftime("%Y-%m-%dT%H:%M:%SZ")


def kustomization(name: str = "apps", **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": name, "namespace": "flux-system",
                     "creationTimestamp": stamp(timedelta(minutes=3, seconds=20))},
        "spec": {"sourceRef": {"kind": "GitRepository", "name": "flux-system"}},
        "status": status,
    }  # fmt: skip


def ready(value: str, message: str) -> list[dict[str, str]]:
    return [{"type": "Ready", "status": value, "reason": "R", "message": message}]


def test_digests_are_cut_to_eight_characters_wherever_they_appear() -> None:
    assert truncate_hex(f"main@sha1:{SHA}") == "main@sha1:3f2a1c9e"
    message = f"Applied revision: main@sha1:{SHA}"
    assert truncate_hex(message) == "Applied revision: main@sha1:3f2a1c9e"
    assert truncate_hex("v1.2.3") == "v1.2.3"


def test_plain_tables_align_columns_and_leave_no_trailing_space() -> None:
    text = plain_table(["NAME", "READY"], [["flux-system", "True"], ["a", "False"]])
    assert text == "NAME          READY\nflux-system   True\na             False\n"
    assert plain_table(["NAME"], [["a"]], show_header=False) == "a\n"


def test_the_annotation_value_is_gos_rfc3339nano() -> None:
    nanos = int(datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC).timestamp()) * 10**9
    assert requested_at(nanos + 123_450_000, UTC) == "2024-05-01T12:00:00.12345Z"
    assert requested_at(nanos, UTC) == "2024-05-01T12:00:00Z"
    plus_two = timezone(timedelta(hours=2))
    assert requested_at(nanos + 1, plus_two) == "2024-05-01T14:00:00.000000001+02:00"


def test_a_summary_reads_revision_ready_message_and_suspension() -> None:
    obj = kustomization(lastAppliedRevision=f"main@sha1:{SHA}",
                        conditions=ready("False", "kustomize build failed"))  # fmt: skip
    obj["spec"]["suspend"] = True
    summary = summarize(KUSTOMIZATION, obj)
    assert (summary.revision, summary.ready, summary.message, summary.suspended) == (
        f"main@sha1:{SHA}", "False", "kustomize build failed", True,
    )  # fmt: skip
    [row] = rows([summary], all_namespaces=True, with_kind=True, now=NOW)
    assert row == ["flux-system", "kustomization/apps", "main@sha1:3f2a1c9e", "True", "False",
                   "3m20s", "kustomize build failed"]  # fmt: skip


def test_an_object_never_reconciled_reads_unknown() -> None:
    release = {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": "grafana", "namespace": "observability"},
        "spec": {},
    }
    summary = summarize(HELM_RELEASE, release)
    assert (summary.ready, summary.revision) == ("Unknown", "")
    assert matches_status(release, ("ready", "unknown"))
    assert not matches_status(release, ("ready", "false"))


def test_a_helm_release_shows_the_chart_version_it_runs() -> None:
    release = {"kind": "HelmRelease", "metadata": {"name": "r"}, "status": {
        "lastAttemptedRevision": "2.0.0", "history": [{"chartVersion": "1.9.0"}]}}  # fmt: skip
    assert HELM_RELEASE.revision(release) == "1.9.0"


def test_the_status_selector_compares_in_any_case() -> None:
    assert parse_status_selector("ready=false") == ("ready", "false")
    with pytest.raises(InputError, match="TYPE=STATUS"):
        parse_status_selector("ready")
    failing = kustomization("a", conditions=ready("False", "x"))
    fine = kustomization("b", conditions=ready("True", "y"))
    chosen = select(KUSTOMIZATION, [fine, failing], name=None, selector=("Ready", "FALSE"))
    assert [s.name for s in chosen] == ["a"]


def test_a_reconcile_is_done_once_the_request_is_handled_and_ready_is_known() -> None:
    at = "2024-05-01T12:00:00.5Z"
    assert not handled(kustomization(lastHandledReconcileAt="earlier",
                                     conditions=ready("True", "")), at)  # fmt: skip
    assert not handled(kustomization(lastHandledReconcileAt=at,
                                     conditions=ready("Unknown", "")), at)  # fmt: skip
    done = kustomization(lastHandledReconcileAt=at, lastAppliedRevision="main@sha1:abc",
                         conditions=ready("True", "Applied revision: main@sha1:abc"))  # fmt: skip
    assert handled(done, at)
    assert outcome(KUSTOMIZATION, done) == (True, "applied revision main@sha1:abc")
    failed = kustomization(lastHandledReconcileAt=at, conditions=ready("False", "bad YAML"))
    assert outcome(KUSTOMIZATION, failed) == (False, "bad YAML")
    source = {"kind": "GitRepository", "status": {
        "artifact": {"revision": "main@sha1:def"}, "conditions": ready("True", "")}}  # fmt: skip
    assert outcome(GIT_REPOSITORY, source) == (True, "fetched revision main@sha1:def")


def test_source_references_default_to_the_objects_namespace() -> None:
    assert source_ref(kustomization()) == ("GitRepository", "flux-system", "flux-system")
    chart_ref = {"kind": "HelmRepository", "name": "charts", "namespace": "flux-system"}
    release = {
        "metadata": {"namespace": "apps"},
        "spec": {"chart": {"spec": {"sourceRef": chart_ref}}},
    }
    assert source_ref(release) == ("HelmRepository", "flux-system", "charts")
    by_chart_ref = {"metadata": {"namespace": "apps"},
                    "spec": {"chartRef": {"kind": "OCIRepository", "name": "podinfo"}}}  # fmt: skip
    assert source_ref(by_chart_ref) == ("OCIRepository", "apps", "podinfo")
    assert source_ref({"spec": {}}) is None


def test_an_oci_helm_repository_is_static_and_ready_says_so() -> None:
    oci = {"spec": {"type": "oci", "url": "oci://ghcr.io/charts"},
           "status": {"conditions": ready("True", "Helm repository is Ready")}}  # fmt: skip
    assert static(HELM_REPOSITORY, oci)
    assert not static(HELM_REPOSITORY, {"spec": {"url": "https://charts.example"}})
    assert not static(GIT_REPOSITORY, oci)
    assert outcome(HELM_REPOSITORY, oci) == (True, "Helm repository is Ready")


def test_helm_reads_the_kubeconfig_named_or_the_first_in_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KUBECONFIG", "/a/config:/b/config")
    assert str(helm_kubeconfig(None)) == "/a/config"
    assert str(helm_kubeconfig(Path("/c/config"))) == "/c/config"
    monkeypatch.delenv("KUBECONFIG")
    assert helm_kubeconfig(None) is None


def event(name: str, kind: str = "Kustomization", **fields: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": f"{name}.1", "namespace": "flux-system"},
        "involvedObject": {"kind": kind, "name": name, "namespace": "flux-system"},
        "type": "Normal",
        "reason": "ReconciliationSucceeded",
        "message": "done\n",
        **fields,
    }


def test_last_seen_counts_repeats_as_kubectl_does() -> None:
    once = event("apps", firstTimestamp=stamp(timedelta(minutes=4)),
                 lastTimestamp=stamp(timedelta(minutes=4)), count=1)  # fmt: skip
    assert last_seen(once, NOW) == "4m"
    repeated = event("apps", firstTimestamp=stamp(timedelta(minutes=4)),
                     lastTimestamp=stamp(timedelta(seconds=10)), count=3)  # fmt: skip
    assert last_seen(repeated, NOW) == "10s (x3 over 4m)"
    assert last_seen(event("apps"), NOW) == "<unknown>"
    assert event_row(repeated, NOW, with_namespace=True) == [
        "flux-system", "10s (x3 over 4m)", "Normal", "ReconciliationSucceeded",
        "Kustomization/apps", "done",
    ]  # fmt: skip


def test_events_sort_by_their_last_sighting() -> None:
    old = event("a", lastTimestamp=stamp(timedelta(hours=1)))
    new = event("b", lastTimestamp=stamp(timedelta(minutes=1)))
    series = event("c", series={"lastObservedTime": stamp(timedelta(seconds=1)), "count": 2},
                   lastTimestamp=stamp(timedelta(hours=2)))  # fmt: skip
    ordered = sorted([series, new, old], key=event_time)
    assert [e["involvedObject"]["name"] for e in ordered] == ["a", "b", "c"]


def test_only_events_about_gitmoor_kinds_and_the_chosen_objects_are_kept() -> None:
    pod = event("web", kind="Pod")
    apps = event("apps")
    source = event("flux-system", kind="GitRepository")
    anywhere = Selection(None)
    assert anywhere.matches(apps)
    assert not anywhere.matches(pod)
    targets = (
        Target("Kustomization", "flux-system", "apps"),
        Target("GitRepository", "flux-system", "flux-system"),
    )
    chosen = Selection("flux-system", targets)
    assert chosen.matches(apps)
    assert chosen.matches(source)
    assert not chosen.matches(event("other"))
    warnings = Selection("flux-system", types=("warning",))
    assert not warnings.matches(apps)
    assert warnings.matches(event("apps", type="Warning"))
    assert not Selection("apps").matches(apps)


def test_for_takes_a_kind_in_any_case_and_an_optional_name() -> None:
    assert parse_for("kustomization/apps") == ("Kustomization", "apps")
    assert parse_for("GitRepository") == ("GitRepository", None)
    with pytest.raises(InputError, match="'Deployment' is not a kind gitmoor reads"):
        parse_for("Deployment/web")


def test_a_tree_draws_nesting_and_serializes_as_flux_does() -> None:
    def ref(kind: str, namespace: str, name: str, group: str = "") -> ObjectRef:
        return ObjectRef(group, kind, namespace, name)

    ks = "kustomize.toolkit.fluxcd.io"
    root = Node(ref("Kustomization", "flux-system", "flux-system", ks), [
        Node(ref("Namespace", "", "apps")),
        Node(ref("Kustomization", "flux-system", "apps", ks), [
            Node(ref("Deployment", "apps", "web", "apps")),
            Node(ref("Service", "apps", "web")),
        ]),
        Node(ref("ConfigMap", "flux-system", "settings")),
    ])  # fmt: skip
    assert render(root) == (
        "Kustomization/flux-system/flux-system\n"
        "├── Namespace/apps\n"
        "├── Kustomization/flux-system/apps\n"
        "│   ├── Deployment/apps/web\n"
        "│   └── Service/apps/web\n"
        "└── ConfigMap/flux-system/settings\n"
    )
    data = as_data(root)
    assert data["resource"] == {"Namespace": "flux-system", "Name": "flux-system",
                                "GroupKind": {"Group": ks, "Kind": "Kustomization"}}  # fmt: skip
    assert "resources" not in data["resources"][0]
    assert [r["resource"]["Name"] for r in data["resources"][1]["resources"]] == ["web", "web"]


def test_on_a_terminal_the_table_is_rich_and_takes_messages_verbatim() -> None:
    buffer = io.StringIO()
    output = Output()
    output.out = Console(file=buffer, force_terminal=True, width=120, color_system="standard")
    print_table(output, ["NAME", "READY", "MESSAGE"], [["apps", "False", "bad [red]x[/] YAML"]],
                condition_column="READY")  # fmt: skip
    written = buffer.getvalue()
    assert "bad [red]x[/] YAML" in written
    assert "\x1b[31mFalse" in written


def snapshot(
    version: int, status: str, chart_version: str = "1.0.0", **more: Any
) -> dict[str, Any]:
    return {"version": version, "chartName": "web", "chartVersion": chart_version,
            "appVersion": "1.0", "configDigest": "sha256:" + "ab" * 32, "status": status,
            "firstDeployed": "2024-05-01T12:00:00Z",
            "lastDeployed": f"2024-05-0{version}T12:00:00Z", **more}  # fmt: skip


def helm_release(revision: int, status: str, chart_version: str = "1.0.0") -> Release:
    return Release("web", "apps", revision, status, "web", chart_version, "1.0",
                   f"2024-05-0{revision}T12:00:00Z")  # fmt: skip


def test_history_rows_come_newest_first_with_short_digests() -> None:
    release = {"status": {"history": [snapshot(1, "superseded"), snapshot(2, "deployed")]}}
    kept = snapshots(release)
    assert [r.version for r in kept] == [2, 1]
    rows = compare(kept, [helm_release(2, "deployed"), helm_release(1, "superseded")])
    assert [row.helm for row in rows] == ["matches", "matches"]
    assert table_rows(rows)[0] == ["2", "web@1.0.0", "1.0", "sha256:abababab", "deployed",
                                   "2024-05-01T12:00:00Z", "2024-05-02T12:00:00Z",
                                   "matches"]  # fmt: skip
    assert records(rows)[1]["helm"] == {"matches": True, "differences": []}
    assert snapshots({}) == []


def test_history_marks_each_way_helm_disagrees() -> None:
    kept = [Revision.of(s) for s in (
        snapshot(4, "deployed", "1.1.0"), snapshot(3, "deployed"), snapshot(2, "superseded"),
    )]  # fmt: skip
    helm = [helm_release(5, "deployed", "1.2.0"), helm_release(3, "superseded", "1.0.1"),
            helm_release(2, "superseded"), helm_release(1, "superseded")]  # fmt: skip
    marks = {row.revision.version: row.differences for row in compare(kept, helm)}
    # Revision 1 is older than any snapshot kept: its absence is no disagreement.
    assert marks == {
        5: (ONLY_IN_HELM,),
        4: (NOT_IN_HELM,),
        3: ("status: superseded in Helm", "chart: web@1.0.1 in Helm"),
        2: (),
    }
    only_helm = compare([], [helm_release(1, "deployed")])
    assert [(r.revision.chart, r.revision.config_digest, r.helm) for r in only_helm] == [
        ("web@1.0.0", "", ONLY_IN_HELM),
    ]


def test_deployment_times_compare_as_times_not_text() -> None:
    offset = Revision.of(snapshot(1, "deployed", lastDeployed="2024-05-01T14:00:00+02:00"))
    [row] = compare([offset], [helm_release(1, "deployed")])
    assert row.differences == ()
    later = Revision.of(snapshot(1, "deployed", lastDeployed="2024-05-01T12:00:01Z"))
    [row] = compare([later], [helm_release(1, "deployed")])
    assert row.differences == ("last deployed: 2024-05-01T12:00:00Z in Helm",)
