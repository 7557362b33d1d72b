"""The Secret an ExternalSecret writes, from the values it fetched (pure functions).

With no ``target.template`` the Secret holds the values as they are, and the
ExternalSecret's own labels and annotations, as External Secrets copies them. With a
template: its ``type``, its labels and annotations, and the keys of its ``data`` rendered
by :mod:`gitmoor.secrets.template` over the values (``mergePolicy: Merge`` keeps the
fetched values beside them; a template without ``data`` keeps them all).

Every Secret written carries ``reconcile.external-secrets.io/managed: "true"`` and the
``reconcile.external-secrets.io/data-hash`` of its data, so a Secret edited or emptied by
hand is told apart from one as synced (:func:`in_sync`).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from typing import Any

from gitmoor.api.secrets import ExternalSecret
from gitmoor.errors import Location
from gitmoor.manifests import KubeObject
from gitmoor.secrets.errors import InvalidSpecError
from gitmoor.secrets.template import render
from gitmoor.secrets.vault import go_json

MANAGED_LABEL = "reconcile.external-secrets.io/managed"
DATA_HASH = "reconcile.external-secrets.io/data-hash"
# Never copied from the ExternalSecret: it describes the ExternalSecret, not the Secret.
_NOT_COPIED = frozenset({"kubectl.kubernetes.io/last-applied-configuration"})
_TEXT = "surrogateescape"  # bytes that are not UTF-8 pass through templates unchanged


def secret_data(es: ExternalSecret, values: Mapping[str, bytes]) -> dict[str, bytes]:
    """The Secret's data: the values, or what the template makes of them."""
    template = es.spec.target.template if es.spec.target else None
    if template is None:
        return dict(values)
    if template.template_from:
        raise InvalidSpecError(
            "templateFrom is not supported by gitmoor; put the templates in template.data",
            Location(field="spec.target.template.templateFrom"),
        )
    if not template.data:
        return dict(values)
    strings = _strings(values)
    data = dict(values) if template.merge_policy == "Merge" else {}
    for key, text in template.data.items():
        rendered = render(text, strings, where=f"spec.target.template.data.{key}")
        data[key] = rendered.encode("utf-8", _TEXT)
    return data


def desired_secret(
    es: ExternalSecret,
    values: Mapping[str, bytes],
    *,
    owner_uid: str | None,
    with_type: bool = True,
) -> KubeObject:
    """The Secret to apply (server-side) for ``es`` from the fetched ``values``.
    ``owner_uid`` makes ``es`` its controlling owner, so deleting ``es`` collects it;
    ``with_type`` False leaves the type of a Secret merged into as it is."""
    target = es.spec.target
    template = target.template if target else None
    data = secret_data(es, values)
    encoded = {key: base64.b64encode(value).decode() for key, value in sorted(data.items())}
    if template is None:
        labels = dict(es.metadata.labels or {})
        annotations = {
            k: v for k, v in (es.metadata.annotations or {}).items() if k not in _NOT_COPIED
        }
        secret_type = "Opaque"
    else:
        strings = _strings(values)
        metadata = template.metadata
        labels = _rendered(metadata.labels if metadata else None, strings, "labels")
        annotations = _rendered(metadata.annotations if metadata else None, strings, "annotations")
        secret_type = template.type or "Opaque"
    meta: dict[str, Any] = {
        "name": es.target_name,
        "namespace": es.namespace,
        "labels": {**labels, MANAGED_LABEL: "true"},
        "annotations": {**annotations, DATA_HASH: data_hash(encoded)},
    }
    if owner_uid is not None:
        meta["ownerReferences"] = [
            {
                "apiVersion": f"{es.GROUP}/{es.VERSION}",
                "kind": es.KIND,
                "name": es.name,
                "uid": owner_uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    secret: KubeObject = {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "data": encoded}
    if with_type:
        secret["type"] = secret_type
    if target is not None and target.immutable:
        secret["immutable"] = True
    return secret


def data_hash(encoded: Mapping[str, str]) -> str:
    """A digest of a Secret's ``data`` (base64 values, as the API holds them)."""
    return hashlib.sha256(go_json(dict(encoded)).encode()).hexdigest()[:32]


def in_sync(secret: Mapping[str, Any] | None) -> bool:
    """The Secret exists and its data is what the last sync wrote (by the data hash)."""
    if secret is None:
        return False
    annotations = (secret.get("metadata") or {}).get("annotations") or {}
    written = annotations.get(DATA_HASH)
    return written is not None and written == data_hash(secret.get("data") or {})


def _strings(values: Mapping[str, bytes]) -> dict[str, str]:
    return {key: value.decode("utf-8", _TEXT) for key, value in values.items()}


def _rendered(
    templates: Mapping[str, str] | None, strings: Mapping[str, str], what: str
) -> dict[str, str]:
    return {
        key: render(text, strings, where=f"spec.target.template.metadata.{what}.{key}")
        for key, text in (templates or {}).items()
    }
