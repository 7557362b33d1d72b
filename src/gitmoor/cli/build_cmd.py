"""``gitmoor build`` and ``gitmoor diff``: render a repository offline, compare two revisions."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import click
from rich.table import Table

from gitmoor.api.kustomize import Kustomization
from gitmoor.cli.common import EXIT_CHANGES, EXIT_ERROR, EXIT_OK, Output, default_cache_dir
from gitmoor.diff import Change, diff_objects, redact, render_markdown
from gitmoor.errors import InputError
from gitmoor.manifests import KubeObject, ObjectKey, dump_all, key_of, load_all
from gitmoor.render.repository import RepositoryBuild, build_repository
from gitmoor.render.sops import keys_from_files
from gitmoor.source.artifacts import ArtifactStore
from gitmoor.source.checkout import checkout
from gitmoor.source.fetcher import Fetcher

_PATH_HELP = "Path inside the repository to start from, as Flux's root Kustomization has it."
_OBJECTS_HELP = (
    "A YAML file of objects that exist in the cluster but not in Git, such as the "
    "ConfigMaps and Secrets that postBuild.substituteFrom and valuesFrom read (repeatable)."
)
_DECRYPTION_KEY_HELP = (
    "An age identity file or armored PGP private key that decrypts the SOPS-encrypted "
    "files of every Kustomization with spec.decryption (repeatable). The Secret a "
    "Kustomization's decryption.secretRef names is used too when given with --objects."
)
_SHOW_SECRETS_HELP = "Show Secret values instead of redacting them."
_SOURCE_HELP = (
    "Use a local directory for a GitRepository instead of fetching it: "
    "NAMESPACE/NAME=DIR (repeatable). The GitRepository of the Kustomization that builds "
    "--path itself is always the repository given."
)


def _local_sources(values: tuple[str, ...]) -> dict[tuple[str, str], Path]:
    sources: dict[tuple[str, str], Path] = {}
    for value in values:
        name, sep, directory = value.partition("=")
        namespace, slash, repo = name.partition("/")
        if not sep or not slash or not directory:
            raise InputError(f"--source {value!r}: expected NAMESPACE/NAME=DIR")
        sources[(namespace, repo)] = Path(directory).resolve()
    return sources


def _cluster_objects(files: tuple[Path, ...]) -> list[KubeObject]:
    return [obj for file in files for obj in load_all(file.read_text(), file=str(file))]


def _build(
    output: Output,
    target: str,
    ref: str | None,
    path: str,
    sources: tuple[str, ...],
    objects: tuple[Path, ...],
    decryption_keys: tuple[Path, ...],
) -> RepositoryBuild:
    cache = default_cache_dir()
    local = _local_sources(sources)
    cluster = _cluster_objects(objects)
    keys = keys_from_files(decryption_keys)
    with output.err.status(f"building {target} at {ref or 'working tree'}, path {path}"):
        tree = checkout(target, ref, ArtifactStore(cache))
        result = build_repository(
            tree.path,
            path,
            sources=Fetcher(cache),
            local_sources=local,
            cluster_objects=cluster,
            revision=tree.revision,
            decryption_keys=keys,
        )
    for error in result.errors:
        output.error(error)
    return result


def _short(revision: str | None) -> str:
    """``v1.2.3@sha256:<64 hex>`` as ``v1.2.3@sha256:<12 hex>``, as flux get shows it."""
    if not revision:
        return ""
    label, at, digest = revision.rpartition("@")
    algorithm, colon, value = digest.partition(":")
    return f"{label}{at}{algorithm}{colon}{value[:12]}" if colon else revision


def _summary(output: Output, result: RepositoryBuild) -> None:
    kustomizations = Table(title="Kustomizations", title_justify="left")
    for column in ("name", "path", "revision", "objects", "depends on", "status"):
        kustomizations.add_column(column)
    releases = Table(title="HelmReleases", title_justify="left")
    for column in ("name", "chart", "version", "objects", "depends on", "status"):
        releases.add_column(column)
    for unit in sorted(result.units.values(), key=lambda u: u.id):
        resource = unit.resource
        depends = ", ".join(d.name for d in resource.spec.depends_on or [])
        status = "ok" if unit.error is None else "[red]failed[/]"
        name = f"{unit.id.namespace}/{unit.id.name}"
        count = str(len(unit.objects))
        if isinstance(resource, Kustomization):
            path = resource.spec.path or "./"
            kustomizations.add_row(name, path, _short(unit.revision), count, depends, status)
        else:
            chart = resource.spec.chart
            ref = resource.spec.chart_ref
            chart_name = chart.spec.chart if chart else f"{ref.kind}/{ref.name}" if ref else ""
            releases.add_row(name, chart_name, _short(unit.revision), count, depends, status)
    kinds = Table(title="Objects by kind", title_justify="left")
    kinds.add_column("kind")
    kinds.add_column("count", justify="right")
    counts = Counter(key_of(obj).kind for _, obj in result.objects())
    for kind, number in sorted(counts.items()):
        kinds.add_row(kind, str(number))
    kinds.add_row("[bold]total[/]", f"[bold]{sum(counts.values())}[/]")
    for table in (kustomizations, releases, kinds):
        output.out.print(table)
    output.out.print("[bold]dependsOn order[/]")
    for number, wave in enumerate(result.waves, start=1):
        output.out.print(f"  {number}. " + ", ".join(str(n) for n in wave))


def _shown(obj: KubeObject, show_secrets: bool) -> KubeObject:
    return obj if show_secrets else redact(obj)


def _write_tree(result: RepositoryBuild, directory: Path, show_secrets: bool) -> int:
    """One file per object under a folder per Kustomization or HelmRelease."""
    written = 0
    for origin, obj in result.objects():
        key = key_of(obj)
        folder = directory / (
            f"{origin.kind}-{origin.namespace}-{origin.name}" if origin else "_root"
        )
        folder.mkdir(parents=True, exist_ok=True)
        name = "-".join(p for p in (key.kind, key.namespace, key.name) if p)
        (folder / f"{name}.yaml").write_text(dump_all([_shown(obj, show_secrets)]))
        written += 1
    return written


def _repository_options(command: Callable[..., None]) -> Callable[..., None]:
    """--path, --source, --objects, --decryption-key and --show-secrets: what both
    build and diff need to render and show."""
    options = (
        click.option("--path", "path", default=".", show_default=True, help=_PATH_HELP),
        click.option(
            "--source", "sources", multiple=True, metavar="NS/NAME=DIR", help=_SOURCE_HELP
        ),
        click.option(
            "--objects",
            "objects",
            multiple=True,
            help=_OBJECTS_HELP,
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
        ),
        click.option(
            "--decryption-key",
            "decryption_keys",
            multiple=True,
            help=_DECRYPTION_KEY_HELP,
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
        ),
        click.option("--show-secrets", is_flag=True, help=_SHOW_SECRETS_HELP),
    )
    for option in reversed(options):
        command = option(command)
    return command


@click.command()
@click.argument("repository", default=".", metavar="PATH_OR_URL")
@click.option(
    "--ref",
    help="Branch, tag or commit (tag:v1, semver:>=1.0, commit:SHA); "
    "for a local path, anything git rev-parse understands. Default: the working tree.",
)
@_repository_options
@click.option("--summary", is_flag=True, help="Print tables instead of the objects.")
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write one file per object into this directory instead of a YAML stream.",
)
def build(
    repository: str,
    ref: str | None,
    path: str,
    sources: tuple[str, ...],
    objects: tuple[Path, ...],
    decryption_keys: tuple[Path, ...],
    show_secrets: bool,
    summary: bool,
    output_dir: Path | None,
) -> None:
    """Render every object the cluster would receive from a Flux repository.

    Starts at --path, renders it with kustomize and follows every Kustomization and
    HelmRelease in the output, recursively, fetching the Git repositories, Helm
    repositories and OCI registries they name. SOPS-encrypted files are decrypted
    with --decryption-key (or the decryption Secret given with --objects); Secret
    values are redacted unless --show-secrets. Exit code 2 if anything failed to
    render; what did render is still printed.

    \b
    Examples:
      gitmoor build examples/homelab --path clusters/production --summary \
        --decryption-key examples/keys/demo.agekey
      gitmoor build . --ref HEAD~1 --path clusters/production > before.yaml
    """
    output = Output()
    result = _build(output, repository, ref, path, sources, objects, decryption_keys)
    if summary:
        _summary(output, result)
    elif output_dir is not None:
        count = _write_tree(result, output_dir, show_secrets)
        output.info(f"wrote {count} objects under {output_dir}")
    else:
        output.data(dump_all(_shown(obj, show_secrets) for _, obj in result.objects()))
    raise SystemExit(EXIT_ERROR if result.errors else EXIT_OK)


def _keyed(result: RepositoryBuild) -> dict[ObjectKey, tuple[str | None, dict[str, object]]]:
    return {
        key: (str(origin) if origin else None, obj)
        for key, (origin, obj) in result.by_key().items()
    }


@click.command()
@click.argument("repository", default=".", metavar="PATH")
@click.option("--base", required=True, help="The ref to compare from (e.g. main, HEAD~1, a sha).")
@click.option("--head", help="The ref to compare to. Default: the working tree.")
@_repository_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "markdown"]),
    default="text",
    show_default=True,
    help="markdown suits a pull-request comment.",
)
def diff(
    repository: str,
    base: str,
    head: str | None,
    path: str,
    sources: tuple[str, ...],
    objects: tuple[Path, ...],
    decryption_keys: tuple[Path, ...],
    show_secrets: bool,
    fmt: str,
) -> None:
    """Show what a change would change in the cluster, object by object.

    Builds the repository at --base and at --head (or the working tree) and compares
    every rendered object: added, removed, or changed with a unified YAML diff.
    Secret values are redacted unless --show-secrets. Exit code: 0 no change,
    1 changes, 2 error.

    \b
    Example:
      gitmoor diff examples/homelab --base HEAD~1 --path clusters/production
    """
    output = Output()
    before = _build(output, repository, base, path, sources, objects, decryption_keys)
    after = _build(output, repository, head, path, sources, objects, decryption_keys)
    changes = diff_objects(_keyed(before), _keyed(after), redact_secrets=not show_secrets)
    if fmt == "markdown":
        output.data(render_markdown(changes))
    else:
        for change in changes:
            style = {Change.ADDED: "green", Change.REMOVED: "red", Change.CHANGED: "yellow"}
            output.out.print(
                f"[{style[change.change]}]{change.change.value}[/] {change.key}"
                + (f"  ({change.origin})" if change.origin else "")
            )
            output.data(change.text)
        counted = Counter(c.change.value for c in changes)
        output.info(
            f"{counted['changed']} changed, {counted['added']} added, {counted['removed']} removed"
        )
    if before.errors or after.errors:
        raise SystemExit(EXIT_ERROR)
    raise SystemExit(EXIT_CHANGES if changes else EXIT_OK)
