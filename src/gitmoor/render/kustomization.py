"""Building a Flux Kustomization the way kustomize-controller does.

The controller works on a copy of the source artifact: it makes sure ``spec.path`` has a
kustomization file (generating one when there is none), edits that file with the
Kustomization's own settings (targetNamespace, namePrefix/Suffix, patches, components,
images), runs kustomize, substitutes the postBuild variables in each object, and puts
``spec.commonMetadata`` on every object's own metadata. This module does the same, with
the real kustomize engine from kubectl.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitmoor.api.kustomize import Kustomization, KustomizationSpec
from gitmoor.api.meta import Image, Metadata
from gitmoor.errors import Location, ManifestError, RenderError, SubstitutionError
from gitmoor.manifests import KubeObject, dump, key_of, load, load_all
from gitmoor.render.kustomize_cli import kustomize_build
from gitmoor.render.sops import (
    Decryptor,
    decryption_disabled,
    format_for_path,
    is_encrypted,
)
from gitmoor.render.substitute import VariableLookup, resolve_variables, substitute_objects

ORIGIN_ANNOTATION = "config.kubernetes.io/origin"

# kustomize's recognised names, in the order it looks for them.
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")

_KUSTOMIZE_API_VERSION = "kustomize.config.k8s.io/v1beta1"

# Prefixes that make a kustomize path remote (fluxcd/pkg/kustomize IsLocalRelativePath).
_REMOTE_PREFIXES = (
    "git::",
    "gh:",
    "ssh://",
    "https://",
    "http://",
    "git@",
    "github.com:",
    "github.com/",
)


@dataclass(frozen=True)
class RenderedKustomization:
    objects: list[KubeObject]
    files: list[str | None]
    """For each object, the file in the source it came from (None for generated ones)."""


def render_kustomization(
    source_root: Path,
    ks: Kustomization,
    *,
    lookup: VariableLookup,
    strict: bool = True,
    decryption_keys: Mapping[str, bytes] | None = None,
) -> RenderedKustomization:
    """The objects a Kustomization applies, built from the artifact at ``source_root``,
    each with the file it came from.

    ``lookup`` reads the ConfigMaps and Secrets named in ``spec.postBuild.substituteFrom``;
    ``decryption_keys`` is the data of the Secret ``spec.decryption.secretRef`` names.
    The source directory is never modified: the build runs on a temporary copy.
    Raises RenderError (SubstitutionError for postBuild) naming the Kustomization.
    """
    root = source_root.resolve()
    build_dir = _build_dir(root, ks)
    decrypting = ks.spec.decryption is not None
    with (
        tempfile.TemporaryDirectory(prefix="gitmoor-kustomize-") as temp,
        Decryptor(decryption_keys, owner=ks.display) as decryptor,
    ):
        # The whole artifact is copied: overlays reach files through ../ paths.
        work_root = Path(temp).resolve() / "source"
        shutil.copytree(
            root, work_root, symlinks=True, ignore=_version_control, copy_function=_link_or_copy
        )
        work_dir = work_root / build_dir
        asked_for_origins = _write_kustomization(work_dir, ks, build_dir)
        if decrypting:
            # As Flux does: generator and patch files are decrypted before the build.
            for path, fmt in _encrypted_sources(work_root, work_dir):
                decryptor.decrypt_file(path, fmt, file=path.relative_to(work_root).as_posix())
        try:
            objects = kustomize_build(work_dir)
        except RenderError as exc:
            unreadable = _unreadable_manifest(work_root, work_dir, exc.message)
            if unreadable is not None:
                raise unreadable.at(object=ks.display) from None
            raise RenderError(
                _relative_to(work_root, exc.message),
                Location(file=build_dir.as_posix(), object=ks.display),
            ) from None
        files = [_origin(obj, build_dir, keep=asked_for_origins) for obj in objects]
        objects = _decrypt(objects, files, ks, decryptor if decrypting else None)
    _check_identities(objects, ks)
    post_build = ks.spec.post_build
    # Flux loads the variables per object, so none is read for an empty build.
    if post_build is not None and objects:
        try:
            variables = resolve_variables(post_build, lookup)
        except SubstitutionError as exc:
            raise exc.at(object=ks.display) from None
        objects = substitute_objects(objects, variables, strict=strict, origin=ks.display)
    if ks.spec.common_metadata is not None:
        _set_common_metadata(objects, ks.spec.common_metadata)
    return RenderedKustomization(objects, files)


def _origin(obj: KubeObject, build_dir: Path, *, keep: bool) -> str | None:
    """The source file kustomize recorded for ``obj``, relative to the source root.

    gitmoor asks kustomize for origin annotations to name files in errors; unless the
    kustomization itself asked for them (then Flux applies them too), they are removed.
    """
    metadata = obj.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    text = annotations.get(ORIGIN_ANNOTATION)
    if text is None:
        return None
    if not keep:
        del annotations[ORIGIN_ANNOTATION]
        if not annotations:
            del metadata["annotations"]
    origin = load(str(text), file=ORIGIN_ANNOTATION)
    path = origin.get("path") if isinstance(origin, dict) else None
    if not isinstance(path, str) or "repo" in origin:
        return None
    return posixpath.normpath((build_dir / path).as_posix())


def _build_dir(root: Path, ks: Kustomization) -> Path:
    """``spec.path`` as a directory relative to the (resolved) source root."""
    path = ks.spec.path or "./"
    # Flux joins the path under the artifact root, so "/apps" means "./apps".
    normal = posixpath.normpath(path.lstrip("/") or ".")
    if normal == ".." or normal.startswith("../"):
        raise RenderError(
            f"path {path!r} points outside the source",
            Location(object=ks.display, field="spec.path"),
        )
    resolved = (root / normal).resolve()
    if not resolved.is_relative_to(root):
        raise RenderError(
            f"path {path!r} leads outside the source through a symbolic link",
            Location(object=ks.display, field="spec.path"),
        )
    if not resolved.is_dir():
        what = "is not a directory" if resolved.exists() else "does not exist"
        raise RenderError(
            f"path {path!r} {what} in the source", Location(object=ks.display, field="spec.path")
        )
    return resolved.relative_to(root)


def _version_control(directory: str, names: list[str]) -> set[str]:
    # Source artifacts never carry .git; a working tree handed in as the source might.
    return {".git"} & set(names)


def _link_or_copy(source: str, destination: str) -> None:
    """A hard link where the file system allows one, a copy otherwise.

    Linking a tree of a few thousand manifests takes about a fifteenth of the time
    copying it does. It is safe because the build never writes into a file: the
    kustomization file is replaced.
    """
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)


def _unreadable_manifest(work_root: Path, work_dir: Path, message: str) -> ManifestError | None:
    """The YAML file kustomize choked on, read again to name it by its path in the source.

    kustomize names only the base name of a malformed file; a file with that name under
    the build directory that does not parse is the one.
    """
    for file in sorted(work_dir.rglob("*.y*ml")):
        if file.suffix not in (".yaml", ".yml") or file.name not in message:
            continue
        relative = file.relative_to(work_root).as_posix()
        try:
            load_all(file.read_text(errors="replace"), file=relative)
        except ManifestError as exc:
            return exc
    return None


def _relative_to(work_root: Path, message: str) -> str:
    """kustomize's message with the temporary copy's paths made relative to the source."""
    return message.replace(f"{work_root}{os.sep}", "").replace(str(work_root), ".")


# --- the kustomization file ---------------------------------------------------------------


def _kustomization_file(directory: Path) -> Path | None:
    for name in KUSTOMIZATION_FILES:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    return None


def _write_kustomization(directory: Path, ks: Kustomization, build_dir: Path) -> bool:
    """Write the kustomization file Flux would build; True if it asks for origin
    annotations of its own accord (they are then part of the output)."""
    existing = _kustomization_file(directory)
    if existing is None:
        target = directory / KUSTOMIZATION_FILES[0]
        kustomization = _generated_kustomization(directory)
    else:
        target = existing
        kustomization = _read_kustomization(existing, ks, build_dir)
        if not kustomization.get("resources"):
            # As Flux does, so that kustomize does not refuse the file as empty.
            kustomization["buildMetadata"] = ["originAnnotations"]
    _apply_spec(kustomization, ks, directory)
    build_metadata = list(kustomization.get("buildMetadata") or [])
    asked = "originAnnotations" in build_metadata
    if not asked:
        kustomization["buildMetadata"] = [*build_metadata, "originAnnotations"]
    # Replace, never write into: the copy's files are hard links to the source's.
    target.unlink(missing_ok=True)
    target.write_text(dump(kustomization), encoding="utf-8")
    return asked


def _read_kustomization(path: Path, ks: Kustomization, build_dir: Path) -> dict[str, Any]:
    where = (build_dir / path.name).as_posix()
    try:
        content = load(path.read_text(encoding="utf-8"), file=where)
    except ManifestError as exc:
        raise RenderError(exc.message, Location(file=where, object=ks.display)) from None
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise RenderError(
            f"a kustomization file must be a mapping, found {type(content).__name__}",
            Location(file=where, object=ks.display),
        )
    return content


def _generated_kustomization(directory: Path) -> dict[str, Any]:
    """The kustomization.yaml Flux writes for a directory of plain manifests."""
    kustomization: dict[str, Any] = {"apiVersion": _KUSTOMIZE_API_VERSION, "kind": "Kustomization"}
    resources = [f"./{path.relative_to(directory).as_posix()}" for path in _resources(directory)]
    if resources:
        kustomization["resources"] = resources
    else:
        # kustomize refuses an empty kustomization; Flux gives it a namespace to build nothing.
        kustomization["namespace"] = "_placeholder"
    return kustomization


def _resources(directory: Path) -> list[Path]:
    """Every .yaml/.yml file below ``directory`` in Go's filepath.Walk order, except that a
    subdirectory with its own kustomization file is listed as itself, not walked into.

    Files are not parsed here: one that is not a Kubernetes manifest fails in kustomize,
    naming the file, as it does in Flux.
    """
    found: list[Path] = []
    for entry in sorted(os.scandir(directory), key=lambda e: e.name):
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            if _kustomization_file(path) is not None:
                found.append(path)
            else:
                found.extend(_resources(path))
        elif entry.name.endswith((".yaml", ".yml")):
            found.append(path)
    return found


def _apply_spec(kustomization: dict[str, Any], ks: Kustomization, directory: Path) -> None:
    """Flux's edits of the kustomization file (fluxcd/pkg/kustomize Generator)."""
    spec = ks.spec
    if spec.target_namespace is not None:
        kustomization["namespace"] = spec.target_namespace
    if spec.name_prefix is not None:
        kustomization["namePrefix"] = spec.name_prefix
    if spec.name_suffix is not None:
        kustomization["nameSuffix"] = spec.name_suffix
    for patch in spec.patches or []:
        entry: dict[str, Any] = {"patch": patch.patch}
        if patch.target is not None:
            entry["target"] = {k: v for k, v in patch.target.to_dict().items() if v}
        kustomization["patches"] = [*(kustomization.get("patches") or []), entry]
    components = _components(spec, ks, directory)
    if components:
        kustomization["components"] = [*(kustomization.get("components") or []), *components]
    for image in spec.images or []:
        kustomization["images"] = _merge_image(list(kustomization.get("images") or []), image)


def _components(spec: KustomizationSpec, ks: Kustomization, directory: Path) -> list[str]:
    components: list[str] = []
    for index, component in enumerate(spec.components or []):
        if not _is_local_relative(component):
            raise RenderError(
                f"component path {component!r} must be local and relative",
                Location(object=ks.display, field=f"spec.components[{index}]"),
            )
        if spec.ignore_missing_components and not (directory / component).exists():
            continue
        components.append(component)
    return components


def _is_local_relative(path: str) -> bool:
    lower = path.lower()
    if any(len(prefix) < len(path) and lower.startswith(prefix) for prefix in _REMOTE_PREFIXES):
        return False
    return not path.startswith("/") and not lower.removeprefix("file://").startswith("/")


def _merge_image(images: list[dict[str, Any]], image: Image) -> list[dict[str, Any]]:
    """An image override merged into the file's own, field by field as Flux does."""
    fields = {k: v for k, v in image.to_dict().items() if v}
    for index, existing in enumerate(images):
        if existing.get("name") == image.name:
            images[index] = {**existing, **fields}
            return images
    return [*images, fields]


# --- SOPS ------------------------------------------------------------------------------------


def _encrypted_sources(work_root: Path, work_dir: Path) -> Iterator[tuple[Path, str]]:
    """The files secretGenerators read and the patch files of the kustomization at
    ``work_dir`` and of every local directory it reaches, each with its sops format
    (fluxcd kustomize-controller's DecryptSources). Files outside the copy are skipped."""
    seen: set[Path] = set()
    pending = [work_dir]
    while pending:
        directory = pending.pop(0).resolve()
        file = _kustomization_file(directory) if directory.is_dir() else None
        if directory in seen or file is None or not directory.is_relative_to(work_root):
            continue
        seen.add(directory)
        try:
            content = load(file.read_text(encoding="utf-8"), file=file.name)
        except ManifestError:
            continue  # kustomize names the file when it fails on it
        if not isinstance(content, dict):
            continue
        for generator in content.get("secretGenerator") or []:
            for source in generator.get("files") or []:
                key, _, path = str(source).partition("=")
                yield from _inside(work_root, directory, path or key, format_for_path(key))
            for env in [*(generator.get("envs") or []), generator.get("env")]:
                if env:
                    # An env file of no known extension is a dotenv file.
                    fmt = format_for_path(str(env))
                    fmt = "dotenv" if fmt == "binary" else fmt
                    yield from _inside(work_root, directory, str(env), fmt)
        for patch in content.get("patches") or []:
            patch_file = patch.get("path") if isinstance(patch, dict) else None
            if patch_file and "://" not in str(patch_file):
                patch_fmt = format_for_path(str(patch_file))
                yield from _inside(work_root, directory, str(patch_file), patch_fmt)
        for entry in [*(content.get("resources") or []), *(content.get("components") or [])]:
            if _is_local_relative(str(entry)):
                pending.append(directory / str(entry))


def _inside(work_root: Path, directory: Path, path: str, fmt: str) -> Iterator[tuple[Path, str]]:
    resolved = (directory / path).resolve()
    if resolved.is_relative_to(work_root) and resolved.is_file():
        yield resolved, fmt


def _decrypt(
    objects: list[KubeObject],
    files: list[str | None],
    ks: Kustomization,
    decryptor: Decryptor | None,
) -> list[KubeObject]:
    """Every SOPS-encrypted object of the build, decrypted (before postBuild, as in Flux)."""
    result: list[KubeObject] = []
    for obj, file in zip(objects, files, strict=True):
        if not is_encrypted(obj) or decryption_disabled(obj):
            result.append(obj)
        elif decryptor is None:
            raise RenderError(
                f"{key_of(obj)} is encrypted with SOPS, and the Kustomization has no "
                "spec.decryption",
                Location(file=file, object=ks.display, field="spec.decryption"),
            )
        else:
            result.append(decryptor.decrypt_object(obj, file=file))
    return result


# --- after the build ------------------------------------------------------------------------


def _check_identities(objects: list[KubeObject], ks: Kustomization) -> None:
    for obj in objects:
        metadata = obj.get("metadata") or {}
        if not (obj.get("apiVersion") and obj.get("kind") and metadata.get("name")):
            raise RenderError(
                "an object lacks apiVersion, kind or metadata.name "
                f"(kind {obj.get('kind')!r}, name {metadata.get('name')!r})",
                Location(object=ks.display),
            )


def _set_common_metadata(objects: list[KubeObject], common: Metadata) -> None:
    """commonMetadata on each object's own metadata, overriding keys already there; unlike
    kustomize's commonLabels it never reaches selectors or pod templates."""
    for obj in objects:
        metadata = obj.setdefault("metadata", {})
        for part, values in (("labels", common.labels), ("annotations", common.annotations)):
            merged = {**(metadata.get(part) or {}), **(values or {})}
            if merged:
                metadata[part] = merged
