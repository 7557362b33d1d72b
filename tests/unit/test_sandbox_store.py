import asyncio
import base64
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gitmoor.sandbox.errors import ApiError
from gitmoor.sandbox.selectors import FieldSelector, LabelSelector
from gitmoor.sandbox.store import Key, Store, Watch

# Only a guard against a hung test, never a measurement.
GUARD = 20.0


def configmap(name: str, namespace: str = "default", **labels: str) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "uid": f"uid-{name}"}
    if labels:
        metadata["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": {"k": "v"}}


def cm_key(name: str, namespace: str = "default") -> Key:
    return Key("", "configmaps", namespace, name)


def rv(obj: dict[str, Any]) -> str:
    return str(obj["metadata"]["resourceVersion"])


def names(items: list[dict[str, Any]]) -> list[str]:
    return [f"{i['metadata'].get('namespace', '')}/{i['metadata']['name']}" for i in items]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "state.db") as opened:
        yield opened


async def take(watch: Watch, count: int) -> list[tuple[str, dict[str, Any]]]:
    async def collect() -> list[tuple[str, dict[str, Any]]]:
        return [await anext(watch) for _ in range(count)]

    return await asyncio.wait_for(collect(), GUARD)


def summary(events: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, str, str]]:
    return [(kind, obj["metadata"]["name"], rv(obj)) for kind, obj in events]


# -- objects and resourceVersions -----------------------------------------------------


def test_create_get_update_delete(store: Store) -> None:
    created = store.create(cm_key("a"), configmap("a"))
    assert rv(created) == "1"
    assert store.get(cm_key("a")) == created
    assert store.get(cm_key("a", "other")) is None

    changed = {**created, "data": {"k": "w"}}
    updated = store.update(cm_key("a"), changed, expected_rv="1")
    assert rv(updated) == "2"
    assert updated["data"] == {"k": "w"}
    assert updated["metadata"]["uid"] == "uid-a"  # other metadata is not the store's

    deleted = store.delete(cm_key("a"))
    assert rv(deleted) == "3"  # the deletion has a resourceVersion of its own
    assert deleted["data"] == {"k": "w"}
    assert store.get(cm_key("a")) is None
    assert store.current_rv() == 3


def test_create_does_not_keep_the_callers_dict(store: Store) -> None:
    obj = configmap("a")
    created = store.create(cm_key("a"), obj)
    obj["data"]["k"] = "changed"
    created["data"]["k"] = "changed too"
    assert store.get(cm_key("a"))["data"] == {"k": "v"}  # type: ignore[index]
    assert "resourceVersion" not in obj["metadata"]


def test_missing_and_existing_objects(store: Store) -> None:
    store.create(cm_key("a"), configmap("a"))
    with pytest.raises(ApiError) as exists:
        store.create(cm_key("a"), configmap("a"))
    assert (exists.value.code, exists.value.reason) == (409, "AlreadyExists")
    assert exists.value.message == 'configmaps "a" already exists'
    writes: list[Callable[[], object]] = [
        lambda: store.update(cm_key("b"), configmap("b"), expected_rv=None),
        lambda: store.delete(cm_key("b")),
    ]
    for write in writes:
        with pytest.raises(ApiError) as missing:
            write()
        assert (missing.value.code, missing.value.reason) == (404, "NotFound")
        assert missing.value.message == 'configmaps "b" not found'


def test_stale_resource_version_is_a_conflict(store: Store) -> None:
    store.create(cm_key("a"), configmap("a"))
    store.update(cm_key("a"), {**configmap("a"), "data": {"k": "2"}}, expected_rv="1")
    writes: list[Callable[[], object]] = [
        lambda: store.update(cm_key("a"), configmap("a"), expected_rv="1"),
        lambda: store.delete(cm_key("a"), expected_rv="1"),
    ]
    for write in writes:
        with pytest.raises(ApiError) as caught:
            write()
        assert (caught.value.code, caught.value.reason) == (409, "Conflict")
        assert caught.value.message == (
            'Operation cannot be fulfilled on configmaps "a": the object has been modified; '
            "please apply your changes to the latest version and try again"
        )
    # Without a precondition the write goes through.
    assert rv(store.update(cm_key("a"), configmap("a"), expected_rv=None)) == "3"
    assert rv(store.delete(cm_key("a"), expected_rv="3")) == "4"


def test_an_update_that_changes_nothing_is_not_a_write(store: Store) -> None:
    created = store.create(cm_key("a"), configmap("a"))
    again = store.update(cm_key("a"), configmap("a"), expected_rv=None)
    assert again == created
    assert store.current_rv() == 1


def test_resource_versions_are_cluster_wide_and_monotonic(store: Store) -> None:
    versions = [
        rv(store.create(cm_key("a"), configmap("a"))),
        rv(store.create(Key("apps", "deployments", "default", "web"), {"metadata": {}})),
        rv(store.create(Key("", "namespaces", "", "shop"), {"metadata": {"name": "shop"}})),
        rv(store.create(cm_key("a", "shop"), configmap("a", "shop"))),
    ]
    assert versions == ["1", "2", "3", "4"]
    # The same name in another resource or namespace is another object.
    assert store.get(Key("", "namespaces", "", "shop")) == {
        "metadata": {"name": "shop", "resourceVersion": "3"}
    }


def test_state_survives_reopening(tmp_path: Path) -> None:
    with Store(tmp_path / "state.db") as first:
        first.create(cm_key("a"), configmap("a"))
        first.create(cm_key("b"), configmap("b"))
        first.delete(cm_key("b"))
    with Store(tmp_path / "state.db") as second:
        assert second.current_rv() == 3
        kept = second.get(cm_key("a"))
        assert kept is not None
        assert (kept["metadata"]["uid"], rv(kept)) == ("uid-a", "1")
        assert rv(second.create(cm_key("c"), configmap("c"))) == "4"


# -- list -----------------------------------------------------------------------------


def test_list_in_etcd_key_order(store: Store) -> None:
    for namespace, name in [("b", "x"), ("a", "z"), ("a-b", "y"), ("a", "m"), ("a0", "q")]:
        store.create(cm_key(name, namespace), configmap(name, namespace))
    store.create(Key("", "secrets", "a", "s"), {"metadata": {"name": "s"}})
    everything = store.list("", "configmaps", None)
    # etcd compares "a-b/y" and "a/m" bytewise: "-" sorts before "/".
    assert names(everything.items) == ["a-b/y", "a/m", "a/z", "a0/q", "b/x"]
    assert everything.resource_version == "6"
    assert (everything.continue_token, everything.remaining) == (None, None)
    assert names(store.list("", "configmaps", "a").items) == ["a/m", "a/z"]
    assert names(store.list("", "configmaps", "missing").items) == []


def test_list_with_selectors(store: Store) -> None:
    store.create(cm_key("web"), configmap("web", app="web", tier="front"))
    store.create(cm_key("db"), configmap("db", app="db"))
    store.create(cm_key("web", "other"), configmap("web", "other", app="web"))
    web = store.list("", "configmaps", None, labels=LabelSelector.parse("app=web"))
    assert names(web.items) == ["default/web", "other/web"]
    front = store.list(
        "",
        "configmaps",
        None,
        labels=LabelSelector.parse("app in (web, db), !tier"),
        fields=FieldSelector.parse("metadata.namespace=default"),
    )
    assert names(front.items) == ["default/db"]


def test_list_in_pages(store: Store) -> None:
    for i in range(7):
        store.create(cm_key(f"cm-{i}"), configmap(f"cm-{i}"))
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        page = store.list("", "configmaps", "default", limit=3, continue_token=token)
        pages += 1
        seen += names(page.items)
        assert page.resource_version == "7"
        if page.continue_token is None:
            assert page.remaining is None
            break
        assert page.remaining == 7 - len(seen)
        token = page.continue_token
    assert pages == 3
    assert seen == [f"default/cm-{i}" for i in range(7)]


def test_later_pages_are_a_snapshot_of_the_first(store: Store) -> None:
    for name in ["a", "b", "c", "d", "e"]:
        store.create(cm_key(name), configmap(name))
    first = store.list("", "configmaps", None, limit=2)
    assert names(first.items) == ["default/a", "default/b"]
    assert first.remaining == 3
    # Changes after the first page: none of them shows in later pages.
    store.delete(cm_key("c"))
    store.update(cm_key("d"), {**configmap("d"), "data": {"k": "new"}}, expected_rv=None)
    store.create(cm_key("bb"), configmap("bb"))
    store.create(cm_key("f"), configmap("f"))
    store.delete(cm_key("e"))
    store.create(cm_key("e"), configmap("e"))
    rest = store.list("", "configmaps", None, continue_token=first.continue_token)
    assert names(rest.items) == ["default/c", "default/d", "default/e"]
    assert rest.resource_version == first.resource_version
    assert [rv(item) for item in rest.items] == ["3", "4", "5"]
    assert rest.items[1]["data"] == {"k": "v"}
    # A new list sees the present.
    assert names(store.list("", "configmaps", None).items) == [
        f"default/{n}" for n in ["a", "b", "bb", "d", "e", "f"]
    ]


def test_remaining_counts_the_snapshot(store: Store) -> None:
    for name in ["a", "b", "c"]:
        store.create(cm_key(name), configmap(name))
    first = store.list("", "configmaps", None, limit=1)
    store.delete(cm_key("b"))
    store.create(cm_key("z"), configmap("z"))
    second = store.list("", "configmaps", None, limit=1, continue_token=first.continue_token)
    assert names(second.items) == ["default/b"]
    assert second.remaining == 1  # "c"; not "z", created after the snapshot


def test_paged_list_with_a_selector_has_no_remaining_count(store: Store) -> None:
    for i in range(4):
        store.create(cm_key(f"cm-{i}"), configmap(f"cm-{i}", app="x" if i % 2 else "y"))
    labels = LabelSelector.parse("app=x")
    first = store.list("", "configmaps", None, labels=labels, limit=1)
    assert names(first.items) == ["default/cm-1"]
    assert first.remaining is None
    assert first.continue_token is not None
    rest = store.list("", "configmaps", None, labels=labels, continue_token=first.continue_token)
    assert names(rest.items) == ["default/cm-3"]


def test_expired_continue_token_is_gone(tmp_path: Path) -> None:
    with Store(tmp_path / "state.db", event_window=3) as store:
        for name in ["a", "b", "c"]:
            store.create(cm_key(name), configmap(name))
        first = store.list("", "configmaps", None, limit=1)
        for i in range(4):
            store.create(cm_key(f"later-{i}"), configmap(f"later-{i}"))
        with pytest.raises(ApiError) as caught:
            store.list("", "configmaps", None, limit=1, continue_token=first.continue_token)
        assert (caught.value.code, caught.value.reason) == (410, "Expired")
        assert caught.value.message.startswith(
            "The provided continue parameter is too old to display a consistent list result."
        )


@pytest.mark.parametrize(
    "token",
    [
        "not base64 !",
        base64.urlsafe_b64encode(b'{"v":"other","rv":1,"start":"a"}').decode(),
        base64.urlsafe_b64encode(b'{"v":"meta.k8s.io/v1","rv":99,"start":"a"}').decode(),
    ],
)
def test_bad_continue_token_is_a_bad_request(store: Store, token: str) -> None:
    store.create(cm_key("a"), configmap("a"))
    with pytest.raises(ApiError) as caught:
        store.list("", "configmaps", None, continue_token=token)
    assert (caught.value.code, caught.value.reason) == (400, "BadRequest")
    assert caught.value.message.startswith("invalid continue token: continue key is not valid")


def test_continue_token_is_base64_json(store: Store) -> None:
    store.create(cm_key("a"), configmap("a"))
    store.create(cm_key("b"), configmap("b"))
    token = store.list("", "configmaps", None, limit=1).continue_token
    assert token is not None
    decoded = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    assert decoded["rv"] == 2


# -- watch ----------------------------------------------------------------------------


async def test_watch_replays_then_follows(store: Store) -> None:
    store.create(cm_key("a"), configmap("a"))
    store.create(cm_key("b"), configmap("b"))
    store.update(cm_key("a"), {**configmap("a"), "data": {"k": "2"}}, expected_rv=None)
    async with store.watch("", "configmaps", None, since_rv="1") as watch:
        replayed = await take(watch, 2)
        assert summary(replayed) == [("ADDED", "b", "2"), ("MODIFIED", "a", "3")]
        store.delete(cm_key("b"))
        store.create(Key("", "secrets", "default", "s"), {"metadata": {"name": "s"}})
        store.create(cm_key("c"), configmap("c"))
        live = await take(watch, 2)
        assert summary(live) == [("DELETED", "b", "4"), ("ADDED", "c", "6")]


@pytest.mark.parametrize("since", [None, "0"])
async def test_watch_without_a_version_starts_with_the_current_objects(
    store: Store, since: str | None
) -> None:
    store.create(cm_key("b"), configmap("b"))
    store.create(cm_key("a"), configmap("a"))
    store.delete(cm_key("b"))
    async with store.watch("", "configmaps", None, since_rv=since) as watch:
        assert summary(await take(watch, 1)) == [("ADDED", "a", "2")]
        store.create(cm_key("c"), configmap("c"))
        assert summary(await take(watch, 1)) == [("ADDED", "c", "4")]


async def test_send_initial_events_ends_with_a_bookmark(store: Store) -> None:
    store.create(cm_key("a"), configmap("a"))
    store.create(cm_key("b"), configmap("b"))
    watch = store.watch("", "configmaps", None, since_rv=None, send_initial_events=True)
    async with watch:
        events = await take(watch, 3)
        assert summary(events[:2]) == [("ADDED", "a", "1"), ("ADDED", "b", "2")]
        assert events[2] == (
            "BOOKMARK",
            {
                "metadata": {
                    "resourceVersion": "2",
                    "annotations": {"k8s.io/initial-events-end": "true"},
                }
            },
        )


async def test_watch_of_one_namespace(store: Store) -> None:
    async with store.watch("", "configmaps", "shop", since_rv=None) as watch:
        store.create(cm_key("a"), configmap("a"))
        store.create(cm_key("b", "shop"), configmap("b", "shop"))
        assert summary(await take(watch, 1)) == [("ADDED", "b", "2")]
    async with store.watch("", "configmaps", "shop", since_rv="0") as replay:
        assert summary(await take(replay, 1)) == [("ADDED", "b", "2")]


def test_watch_from_a_compacted_version_is_gone(tmp_path: Path) -> None:
    with Store(tmp_path / "state.db", event_window=5) as store:
        for i in range(8):
            store.create(cm_key(f"cm-{i}"), configmap(f"cm-{i}"))
        with pytest.raises(ApiError) as caught:
            store.watch("", "configmaps", None, since_rv="2")
        assert (caught.value.code, caught.value.reason) == (410, "Expired")
        assert caught.value.message == "too old resource version: 2 (3)"
        store.watch("", "configmaps", None, since_rv="3").close()  # events 4..8 are kept


def test_watch_from_a_future_or_malformed_version(store: Store) -> None:
    store.create(cm_key("a"), configmap("a"))
    with pytest.raises(ApiError) as future:
        store.watch("", "configmaps", None, since_rv="7")
    assert (future.value.code, future.value.reason) == (504, "Timeout")
    assert future.value.details is not None
    assert future.value.details["causes"][0]["reason"] == "ResourceVersionTooLarge"
    with pytest.raises(ApiError) as malformed:
        store.watch("", "configmaps", None, since_rv="abc")
    assert (malformed.value.code, malformed.value.reason) == (422, "Invalid")


async def test_watch_resumes_after_reopening(tmp_path: Path) -> None:
    with Store(tmp_path / "state.db") as first:
        first.create(cm_key("a"), configmap("a"))
        first.create(cm_key("b"), configmap("b"))
    with Store(tmp_path / "state.db") as second:
        async with second.watch("", "configmaps", None, since_rv="1") as watch:
            second.create(cm_key("c"), configmap("c"))
            assert summary(await take(watch, 2)) == [("ADDED", "b", "2"), ("ADDED", "c", "3")]


async def test_selector_transitions(store: Store) -> None:
    def write(name: str, app: str) -> None:
        store.update(cm_key(name), configmap(name, app=app), expected_rv=None)

    store.create(cm_key("a"), configmap("a", app="db"))
    labels = LabelSelector.parse("app=web")
    async with store.watch("", "configmaps", None, since_rv="1", labels=labels) as watch:
        write("a", "web")  # starts matching: 2
        write("a", "web2")  # stops matching: 3
        write("a", "db")  # still not matching: 4
        write("a", "web")  # matches again: 5
        store.update(  # matching and matching: 6
            cm_key("a"), {**configmap("a", app="web"), "data": {"k": "6"}}, expected_rv=None
        )
        store.create(cm_key("other"), configmap("other", app="db"))  # never matches: 7
        store.delete(cm_key("other"))  # 8
        store.delete(cm_key("a"))  # 9
        events = await take(watch, 5)
    assert summary(events) == [
        ("ADDED", "a", "2"),
        ("DELETED", "a", "3"),
        ("ADDED", "a", "5"),
        ("MODIFIED", "a", "6"),
        ("DELETED", "a", "9"),
    ]
    # Leaving the selection is sent with the object as it was when it last matched.
    assert events[1][1]["metadata"]["labels"] == {"app": "web"}


async def test_field_selected_watch_replays_transitions(store: Store) -> None:
    store.create(cm_key("a"), configmap("a"))
    store.create(cm_key("b"), configmap("b"))
    store.delete(cm_key("a"))
    fields = FieldSelector.parse("metadata.name=a")
    async with store.watch("", "configmaps", None, since_rv="0", fields=fields) as current:
        store.create(cm_key("a"), configmap("a"))
        assert summary(await take(current, 1)) == [("ADDED", "a", "4")]
    async with store.watch("", "configmaps", None, since_rv="1", fields=fields) as replay:
        assert summary(await take(replay, 2)) == [("DELETED", "a", "3"), ("ADDED", "a", "4")]


async def test_writes_from_other_threads_wake_the_watcher(store: Store) -> None:
    threads, per_thread = 4, 25
    async with store.watch("", "configmaps", None, since_rv=None) as watch:

        def writer(t: int) -> None:
            for i in range(per_thread):
                store.create(cm_key(f"t{t}-{i}"), configmap(f"t{t}-{i}"))

        workers = [threading.Thread(target=writer, args=(t,)) for t in range(threads)]
        for worker in workers:
            worker.start()
        events = await take(watch, threads * per_thread)
        for worker in workers:
            worker.join()
    versions = [int(rv(obj)) for _, obj in events]
    assert versions == list(range(1, threads * per_thread + 1))
    assert {obj["metadata"]["name"] for _, obj in events} == {
        f"t{t}-{i}" for t in range(threads) for i in range(per_thread)
    }


async def test_a_watch_created_in_a_worker_thread(store: Store) -> None:
    watch = await asyncio.to_thread(store.watch, "", "configmaps", None, since_rv=None)
    async with watch:
        await asyncio.to_thread(store.create, cm_key("a"), configmap("a"))
        assert summary(await take(watch, 1)) == [("ADDED", "a", "1")]


async def test_fifty_watchers_get_one_event_each(store: Store) -> None:
    watches = [store.watch("", "configmaps", None, since_rv=None) for _ in range(50)]
    waiting = [asyncio.ensure_future(take(w, 1)) for w in watches]
    await asyncio.sleep(0)  # let them start waiting
    store.create(cm_key("a"), configmap("a"))
    results = await asyncio.gather(*waiting)
    assert all(summary(r) == [("ADDED", "a", "1")] for r in results)
    # Each watcher got its own copy, and has nothing else waiting.
    results[0][0][1]["data"]["k"] = "mine"
    assert results[1][0][1]["data"] == {"k": "v"}
    assert all(w.bookmark_rv() == "1" for w in watches)
    for watch in watches:
        watch.close()


async def test_bookmark_follows_writes_to_other_resources(store: Store) -> None:
    async with store.watch("", "configmaps", None, since_rv=None) as watch:
        assert watch.bookmark_rv() == "0"
        store.create(Key("", "secrets", "default", "s"), {"metadata": {"name": "s"}})
        assert watch.bookmark_rv() == "1"
        store.create(cm_key("a"), configmap("a"))
        assert watch.bookmark_rv() is None  # an event must be read first
        await take(watch, 1)
        assert watch.bookmark_rv() == "2"


async def test_close_ends_the_iteration(store: Store) -> None:
    watch = store.watch("", "configmaps", None, since_rv=None)
    waiting = asyncio.ensure_future(anext(watch, None))
    await asyncio.sleep(0)
    watch.close()
    assert await asyncio.wait_for(waiting, GUARD) is None
    store.create(cm_key("a"), configmap("a"))
    assert [event async for event in watch] == []


async def test_closing_the_store_ends_its_watches(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    watch = store.watch("", "configmaps", None, since_rv=None)
    waiting = asyncio.ensure_future(anext(watch, None))
    await asyncio.sleep(0)
    await asyncio.to_thread(store.close)
    assert await asyncio.wait_for(waiting, GUARD) is None


async def test_cancelling_a_read_loses_no_event(store: Store) -> None:
    async with store.watch("", "configmaps", None, since_rv=None) as watch:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(watch), 0.01)
        store.create(cm_key("a"), configmap("a"))
        assert summary(await take(watch, 1)) == [("ADDED", "a", "1")]


async def test_a_watcher_too_far_behind_is_ended(tmp_path: Path) -> None:
    with Store(tmp_path / "state.db", event_window=3) as store:
        watch = store.watch("", "configmaps", None, since_rv=None)
        for i in range(5):
            store.create(cm_key(f"cm-{i}"), configmap(f"cm-{i}"))
        events = [event async for event in watch]
        # What it had queued is delivered; the client resumes from the last version.
        assert summary(events) == [("ADDED", f"cm-{i}", str(i + 1)) for i in range(3)]
        async with store.watch("", "configmaps", None, since_rv="3") as resumed:
            assert summary(await take(resumed, 2)) == [
                ("ADDED", "cm-3", "4"),
                ("ADDED", "cm-4", "5"),
            ]
