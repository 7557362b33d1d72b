"""ServiceAccount tokens as the API server issues and reviews them (TokenRequest, TokenReview).

Tokens are compact JWS (RFC 7515) JSON Web Tokens signed with ``pki/sa.key``: RS256 for
the RSA 2048 key generated on first use, ES256 if the file holds a P-256 key instead, as
kube-apiserver signs with its ``--service-account-signing-key-file``. Their claims are
those of the apiserver's bound tokens::

    {"aud": [...], "exp": ..., "iat": ..., "iss": "https://kubernetes.default.svc.cluster.local",
     "jti": "<uuid>", "kubernetes.io": {"namespace": ..., "serviceaccount": {"name", "uid"},
     "pod"|"secret"|"node": {"name", "uid"}}, "nbf": ..., "sub": "system:serviceaccount:NS:NAME"}

A review checks what the apiserver's service account authenticator checks, in its order:
the issuer, the signature, the audiences, exp/nbf/iat with one minute of leeway, then
that the ServiceAccount, and the Pod, Secret or Node the token is bound to, still exist
with the uid the token names (and are not being deleted for longer than the leeway).
The ``error`` texts of a failed review are the apiserver's; clients such as Vault's
Kubernetes auth method branch on ``authenticated`` alone.

Objects are read through a ``Lookup`` the server passes in, so this module does no I/O
but reading and creating the key file.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import os
import re
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from gitmoor.errors import GitmoorError, Location
from gitmoor.sandbox.errors import ApiError, bad_request, conflict, invalid, not_found

KubeObject = dict[str, Any]
Lookup = Callable[[str, str, str], KubeObject | None]
"""``(resource, namespace, name)`` → the stored core/v1 object or None; ``resource`` is one
of serviceaccounts, pods, secrets, nodes (namespace "" for nodes)."""

ISSUER = "https://kubernetes.default.svc.cluster.local"
API_AUDIENCES = (ISSUER,)  # --api-audiences defaults to the issuer
KEY_FILE = "sa.key"
GROUP = "authentication.k8s.io"
API_VERSION = f"{GROUP}/v1"
DEFAULT_EXPIRATION_SECONDS = 3600
MIN_EXPIRATION_SECONDS = 600
MAX_EXPIRATION_SECONDS = 1 << 32
LEEWAY_SECONDS = 60  # go-jose's jwt.DefaultLeeway, which the apiserver validates with
INVALID_TOKEN = "invalid bearer token"

# user.extra keys the apiserver fills for service account tokens
EXTRA_CREDENTIAL_ID = "authentication.kubernetes.io/credential-id"
EXTRA_POD_NAME = "authentication.kubernetes.io/pod-name"
EXTRA_POD_UID = "authentication.kubernetes.io/pod-uid"
EXTRA_NODE_NAME = "authentication.kubernetes.io/node-name"
EXTRA_NODE_UID = "authentication.kubernetes.io/node-uid"

_BINDABLE = {"Pod": "pods", "Secret": "secrets", "Node": "nodes"}
_CRYPTO_FAILURE = "go-jose/go-jose: error in cryptographic primitive"
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class BoundObject:
    """The object a token is bound to: it stops being valid when that object goes.

    ``kind`` is Pod, Secret or Node. A Pod-bound token also names the Pod's node, when
    the Pod is scheduled (``node``; its uid is empty when the Node does not exist).
    """

    kind: str
    name: str
    uid: str
    node: BoundObject | None = None


class TokenIssuer:
    """Signs and verifies ServiceAccount tokens with one key."""

    def __init__(
        self,
        key: PrivateKey,
        *,
        issuer: str = ISSUER,
        api_audiences: Sequence[str] = API_AUDIENCES,
    ) -> None:
        if isinstance(key, ec.EllipticCurvePrivateKey) and not isinstance(key.curve, ec.SECP256R1):
            raise ValueError(f"ECDSA keys must be P-256 to sign ES256, not {key.curve.name}")
        self._key = key
        self.issuer = issuer
        self.api_audiences = tuple(api_audiences)
        self.algorithm = "RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256"
        public_der = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        # the apiserver's key id: the SHA-256 of the DER public key, base64url
        self.key_id = _b64encode(hashlib.sha256(public_der).digest())

    @classmethod
    def load(cls, directory: Path, *, issuer: str = ISSUER) -> TokenIssuer:
        """The issuer whose key is ``directory/sa.key``, generated (RSA 2048, mode 0600) if
        missing. Two processes starting at once end up with the same key."""
        path = directory / KEY_FILE
        if not path.exists():
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            _create_key_file(path)
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except ValueError as exc:
            raise GitmoorError(f"not a PEM private key: {exc}", Location(file=str(path))) from None
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise GitmoorError(
                "the service account signing key must be RSA or ECDSA P-256",
                Location(file=str(path)),
            )
        try:
            return cls(key, issuer=issuer)
        except ValueError as exc:
            raise GitmoorError(str(exc), Location(file=str(path))) from None

    # --- issuing -----------------------------------------------------------------------

    def issue(
        self,
        namespace: str,
        service_account: str,
        uid: str,
        *,
        audiences: Sequence[str],
        expiration_seconds: int,
        bound_object: BoundObject | None = None,
        now: float | None = None,
    ) -> tuple[str, str]:
        """A signed token and its expiration time (RFC 3339, as TokenRequest status has it)."""
        issued = int(time.time() if now is None else now)
        expires = issued + expiration_seconds
        kubernetes: dict[str, Any] = {
            "namespace": namespace,
            "serviceaccount": {"name": service_account, "uid": uid},
        }
        if bound_object is not None:
            kubernetes[bound_object.kind.lower()] = _ref(bound_object.name, bound_object.uid)
            if bound_object.kind == "Pod" and bound_object.node is not None:
                kubernetes["node"] = _ref(bound_object.node.name, bound_object.node.uid)
        claims = {
            "aud": list(audiences),
            "exp": expires,
            "iat": issued,
            "iss": self.issuer,
            "jti": str(uuid.uuid4()),
            "kubernetes.io": kubernetes,
            "nbf": issued,
            "sub": username(namespace, service_account),
        }
        return self._sign(claims), _timestamp(expires)

    def _sign(self, claims: KubeObject) -> str:
        header = {"alg": self.algorithm, "kid": self.key_id}
        signing_input = f"{_b64json(header)}.{_b64json(claims)}".encode()
        if isinstance(self._key, rsa.RSAPrivateKey):
            signature = self._key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        else:
            r, s = decode_dss_signature(self._key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
            signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")  # JWS wants r || s
        return f"{signing_input.decode()}.{_b64encode(signature)}"

    # --- reviewing ---------------------------------------------------------------------

    def review(
        self,
        token: str,
        audiences: Sequence[str],
        *,
        lookup: Lookup,
        now: float | None = None,
    ) -> KubeObject:
        """The TokenReview ``status`` the apiserver answers for ``token``.

        Empty ``audiences`` means the API server's own. Authenticated: ``authenticated``,
        ``user`` and ``audiences`` (those of the token that were asked for). Not: ``user``
        empty and ``error``; ``authenticated`` is left out, as the apiserver leaves a false
        value out.
        """
        wanted = list(audiences) or list(self.api_audiences)
        try:
            claims = self._verified_claims(token)
            granted = [a for a in _audiences(claims) if a in wanted]
            if not granted:
                raise _NotAuthenticatedError(
                    f"token audiences {_go_quote(_audiences(claims))} is invalid for the "
                    f"target audiences {_go_quote(wanted)}"
                )
            user = self._validate(claims, lookup, time.time() if now is None else now)
        except _NotAuthenticatedError as exc:
            return {"user": {}, "error": str(exc)}
        return {"authenticated": True, "user": user, "audiences": granted}

    def _verified_claims(self, token: str) -> KubeObject:
        parts = token.split(".")
        if len(parts) != 3:
            raise _NotAuthenticatedError(INVALID_TOKEN)
        try:
            header = json.loads(_b64decode(parts[0]))
            claims = json.loads(_b64decode(parts[1]))
            signature = _b64decode(parts[2])
        except (ValueError, binascii.Error):
            raise _NotAuthenticatedError(INVALID_TOKEN) from None
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise _NotAuthenticatedError(INVALID_TOKEN)
        # Tokens of another issuer are another authenticator's: not an error of this one.
        if claims.get("iss") != self.issuer:
            raise _NotAuthenticatedError(INVALID_TOKEN)
        if header.get("alg") != self.algorithm or not self._verify(
            f"{parts[0]}.{parts[1]}".encode(), signature
        ):
            raise _NotAuthenticatedError(_CRYPTO_FAILURE)
        return claims

    def _verify(self, signing_input: bytes, signature: bytes) -> bool:
        public = self._key.public_key()
        try:
            if isinstance(public, rsa.RSAPublicKey):
                public.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
            else:
                if len(signature) != 64:
                    return False
                der = encode_dss_signature(
                    int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
                )
                public.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True

    def _validate(self, claims: KubeObject, lookup: Lookup, now: float) -> KubeObject:
        """The user the claims name, once the objects they name are checked."""
        expires, not_before, issued = (_number(claims, k) for k in ("exp", "nbf", "iat"))
        if expires is not None and now > expires + LEEWAY_SECONDS:
            raise _NotAuthenticatedError("service account token has expired")
        if not_before is not None and now + LEEWAY_SECONDS < not_before:
            raise _NotAuthenticatedError("service account token is not valid yet")
        if issued is not None and now + LEEWAY_SECONDS < issued:
            raise _NotAuthenticatedError("service account token is issued in the future")
        private = claims.get("kubernetes.io") or {}
        namespace = str(private.get("namespace") or "")
        sa_ref = private.get("serviceaccount") or {}
        sa_name, sa_uid = str(sa_ref.get("name") or ""), str(sa_ref.get("uid") or "")
        account = lookup("serviceaccounts", namespace, sa_name)
        if account is None:
            raise _NotAuthenticatedError(f'serviceaccounts "{sa_name}" not found')
        if _uid(account) != sa_uid:
            raise _NotAuthenticatedError(
                f"service account UID ({_uid(account)}) does not match claim ({sa_uid})"
            )
        if _deleted(account, now):
            raise _NotAuthenticatedError(f"service account {namespace}/{sa_name} has been deleted")
        extra: dict[str, list[str]] = {}
        for kind in ("secret", "pod"):
            ref = private.get(kind)
            if ref is None:
                continue
            _check_bound(lookup, kind, namespace, ref, now)
            if kind == "pod":
                extra[EXTRA_POD_NAME] = [str(ref["name"])]
                extra[EXTRA_POD_UID] = [str(ref["uid"])]
        node_ref = private.get("node")
        if node_ref is not None:
            # A Pod-bound token only reports its Pod's node; a Node-bound one needs the Node.
            if private.get("pod") is None:
                _check_bound(lookup, "node", "", node_ref, now)
            extra[EXTRA_NODE_NAME] = [str(node_ref.get("name") or "")]
            if node_ref.get("uid"):
                extra[EXTRA_NODE_UID] = [str(node_ref["uid"])]
        if claims.get("jti"):
            extra[EXTRA_CREDENTIAL_ID] = [f"JTI={claims['jti']}"]
        user: KubeObject = {
            "username": username(namespace, sa_name),
            "uid": sa_uid,
            "groups": [*service_account_groups(namespace), "system:authenticated"],
        }
        if extra:
            user["extra"] = dict(sorted(extra.items()))
        return user

    # --- publishing the key ------------------------------------------------------------

    def public_key_pem(self) -> str:
        """The public key, PEM: Vault/OpenBao's Kubernetes auth ``pem_keys``."""
        return (
            self._key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def jwks(self) -> KubeObject:
        """The JSON Web Key Set the apiserver serves at ``/openid/v1/jwks``."""
        public = self._key.public_key()
        key: KubeObject = {"use": "sig", "kid": self.key_id, "alg": self.algorithm}
        if isinstance(public, rsa.RSAPublicKey):
            numbers = public.public_numbers()
            key |= {"kty": "RSA", "n": _b64int(numbers.n), "e": _b64int(numbers.e)}
        else:
            point = public.public_numbers()
            key |= {
                "kty": "EC",
                "crv": "P-256",
                "x": _b64encode(point.x.to_bytes(32, "big")),
                "y": _b64encode(point.y.to_bytes(32, "big")),
            }
        return {"keys": [key]}

    def openid_configuration(self, jwks_uri: str) -> KubeObject:
        """The document the apiserver serves at ``/.well-known/openid-configuration``.

        ``jwks_uri`` is where ``jwks()`` is served: the sandbox's own address, since the
        issuer's host name resolves only inside a cluster.
        """
        return {
            "issuer": self.issuer,
            "jwks_uri": jwks_uri,
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [self.algorithm],
        }


# --- the API objects -------------------------------------------------------------------


def token_request(
    issuer: TokenIssuer,
    body: KubeObject,
    *,
    namespace: str,
    name: str,
    lookup: Lookup,
    now: float | None = None,
) -> KubeObject:
    """The TokenRequest answered (201) to ``POST .../serviceaccounts/NAME/token``.

    Raises ApiError as the apiserver answers: 400 for a body that is not a TokenRequest or
    a bound object of another kind, 404 for a missing ServiceAccount or bound object, 409
    for a uid that does not match, 422 for an invalid expiration or a name or namespace
    other than the URL's.
    """
    _check_kind(body, "TokenRequest")
    metadata = _object(body, "metadata", "TokenRequest")
    spec = _object(body, "spec", "TokenRequest")
    for field, wanted, what in (
        ("name", name, "service account name"),
        ("namespace", namespace, "service account namespace"),
    ):
        given = _string(metadata, field, f"metadata.{field}", "TokenRequest")
        if given and given != wanted:
            raise _invalid(
                "TokenRequest",
                name,
                f"metadata.{field}",
                f'Invalid value: "{given}": must match the {what} if specified',
            )
    account = lookup("serviceaccounts", namespace, name)
    if account is None:
        raise not_found("", "serviceaccounts", name)
    account_uid = _uid(account)
    requested_uid = _string(metadata, "uid", "metadata.uid", "TokenRequest")
    if requested_uid and requested_uid != account_uid:
        raise conflict(
            GROUP,
            "TokenRequest",
            name,
            f"the UID in the token request ({requested_uid}) does not match the UID of the "
            f"service account ({account_uid})",
        )
    audiences = _strings(spec, "audiences", "spec.audiences", "TokenRequest")
    expiration = spec.get("expirationSeconds", DEFAULT_EXPIRATION_SECONDS)
    if expiration is None:
        expiration = DEFAULT_EXPIRATION_SECONDS
    if not isinstance(expiration, int) or isinstance(expiration, bool):
        raise _undecodable("TokenRequest", "spec.expirationSeconds", "an integer", expiration)
    if expiration < MIN_EXPIRATION_SECONDS:
        raise _invalid(
            "TokenRequest", "", "spec.expirationSeconds",
            f"Invalid value: {expiration}: may not specify a duration less than 10 minutes",
        )  # fmt: skip
    if expiration > MAX_EXPIRATION_SECONDS:
        raise _invalid(
            "TokenRequest", "", "spec.expirationSeconds",
            f"Invalid value: {expiration}: may not specify a duration larger than 2^32 seconds",
        )  # fmt: skip
    ref = spec.get("boundObjectRef")
    bound = None if ref is None else _bound_object(ref, namespace, name, lookup)
    stamp = time.time() if now is None else now
    token, expires = issuer.issue(
        namespace,
        name,
        account_uid,
        audiences=audiences or issuer.api_audiences,
        expiration_seconds=expiration,
        bound_object=bound,
        now=stamp,
    )
    answered_spec: KubeObject = {
        "audiences": audiences or list(issuer.api_audiences),
        "expirationSeconds": expiration,
    }
    if ref is not None:
        answered_spec["boundObjectRef"] = ref
    return {
        "kind": "TokenRequest",
        "apiVersion": API_VERSION,
        "metadata": {
            **metadata,
            "name": name,
            "namespace": namespace,
            "uid": account_uid,
            "creationTimestamp": _timestamp(int(stamp)),
        },
        "spec": answered_spec,
        "status": {"token": token, "expirationTimestamp": expires},
    }


def token_review(
    issuer: TokenIssuer, body: KubeObject, *, lookup: Lookup, now: float | None = None
) -> KubeObject:
    """The TokenReview answered (201) to ``POST /apis/authentication.k8s.io/v1/tokenreviews``:
    the request with its ``status`` filled in. 400 when it has no token."""
    _check_kind(body, "TokenReview")
    metadata = _object(body, "metadata", "TokenReview")
    spec = _object(body, "spec", "TokenReview")
    token = _string(spec, "token", "spec.token", "TokenReview")
    audiences = _strings(spec, "audiences", "spec.audiences", "TokenReview")
    if not token:
        raise bad_request("token is required for TokenReview in authentication")
    return {
        "kind": "TokenReview",
        "apiVersion": API_VERSION,
        "metadata": metadata,
        "spec": spec,
        "status": issuer.review(token, audiences, lookup=lookup, now=now),
    }


def username(namespace: str, name: str) -> str:
    return f"system:serviceaccount:{namespace}:{name}"


def service_account_groups(namespace: str) -> list[str]:
    return ["system:serviceaccounts", f"system:serviceaccounts:{namespace}"]


# --- helpers ---------------------------------------------------------------------------


class _NotAuthenticatedError(Exception):
    """A review's answer: the token does not authenticate, for this reason."""


def _bound_object(ref: Any, namespace: str, account: str, lookup: Lookup) -> BoundObject:
    if not isinstance(ref, dict):
        raise _undecodable("TokenRequest", "spec.boundObjectRef", "an object", ref)
    kind = _string(ref, "kind", "spec.boundObjectRef.kind", "TokenRequest")
    api_version = _string(ref, "apiVersion", "spec.boundObjectRef.apiVersion", "TokenRequest")
    name = _string(ref, "name", "spec.boundObjectRef.name", "TokenRequest")
    uid = _string(ref, "uid", "spec.boundObjectRef.uid", "TokenRequest")
    group, _, version = api_version.rpartition("/")
    if group or kind not in _BINDABLE:
        raise bad_request(f"cannot bind token to object of type {group}/{version}, Kind={kind}")
    resource = _BINDABLE[kind]
    found = lookup(resource, "" if kind == "Node" else namespace, name)
    if found is None:
        raise not_found("", resource, name)
    node: BoundObject | None = None
    if kind == "Pod":
        spec = found.get("spec") or {}
        # the ServiceAccount admission plugin gives every Pod "default" when it names none
        if account != (spec.get("serviceAccountName") or "default"):
            raise bad_request(
                f'cannot bind token for serviceaccount "{account}" to pod running with '
                "different serviceaccount name."
            )
        node_name = spec.get("nodeName")
        if node_name:
            scheduled_on = lookup("nodes", "", node_name)
            node = BoundObject(
                "Node", node_name, "" if scheduled_on is None else _uid(scheduled_on)
            )
    if uid and uid != _uid(found):
        raise conflict(
            "",
            kind,
            name,
            f"the UID in the bound object reference ({uid}) does not match the UID in record. "
            "The object might have been deleted and then recreated",
        )
    return BoundObject(kind, name, _uid(found), node)


def _check_kind(body: KubeObject, kind: str) -> None:
    given_kind = body.get("kind") or kind
    given_version = body.get("apiVersion") or API_VERSION
    if given_kind != kind or given_version != API_VERSION:
        raise bad_request(
            f"the API version in the data ({given_version}) does not match the expected API "
            f"version ({API_VERSION})"
            if given_version != API_VERSION
            else f"the kind in the data ({given_kind}) does not match the expected kind ({kind})"
        )


def _object(body: KubeObject, field: str, kind: str) -> KubeObject:
    value = body.get(field)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _undecodable(kind, field, "an object", value)
    return value


def _string(body: KubeObject, field: str, path: str, kind: str) -> str:
    value = body.get(field)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _undecodable(kind, path, "a string", value)
    return value


def _strings(body: KubeObject, field: str, path: str, kind: str) -> list[str]:
    value = body.get(field)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _undecodable(kind, path, "a list of strings", value)
    return value


def _undecodable(kind: str, path: str, expected: str, value: Any) -> ApiError:
    """A body whose field has the wrong type: the apiserver fails to decode it (400)."""
    return bad_request(
        f'{kind} in version "v1" cannot be handled as a {kind}: {path}: expected {expected}, '
        f"got {type(value).__name__}"
    )


def _invalid(kind: str, name: str, field: str, message: str) -> ApiError:
    return invalid(
        kind, GROUP, name, [{"reason": "FieldValueInvalid", "message": message, "field": field}]
    )


def _check_bound(lookup: Lookup, kind: str, namespace: str, ref: KubeObject, now: float) -> None:
    """The object a token is bound to (a secret, pod or node) still exists, is the same
    one (uid) and is not being deleted."""
    bound = lookup(f"{kind}s", namespace, str(ref.get("name") or ""))
    if bound is None:
        raise _NotAuthenticatedError("service account token has been invalidated")
    if _uid(bound) != ref.get("uid"):
        raise _NotAuthenticatedError(
            f"{kind} UID ({_uid(bound)}) does not match service account {kind} ref "
            f"claim ({ref.get('uid')})"
        )
    if _deleted(bound, now):
        raise _NotAuthenticatedError("service account token has been invalidated")


def _uid(obj: KubeObject) -> str:
    return str((obj.get("metadata") or {}).get("uid") or "")


def _deleted(obj: KubeObject, now: float) -> bool:
    """Marked for deletion longer ago than the leeway: the apiserver treats it as gone."""
    stamp = (obj.get("metadata") or {}).get("deletionTimestamp")
    if not stamp:
        return False
    marked = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    return marked < now - LEEWAY_SECONDS


def _number(claims: KubeObject, name: str) -> float | None:
    value = claims.get(name)
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _audiences(claims: KubeObject) -> list[str]:
    aud = claims.get("aud")
    if isinstance(aud, str):
        return [aud]
    return [a for a in aud if isinstance(a, str)] if isinstance(aud, list) else []


def _ref(name: str, uid: str) -> dict[str, str]:
    # Go leaves empty fields of the claim out (omitempty)
    return {k: v for k, v in (("name", name), ("uid", uid)) if v}


def _go_quote(values: Sequence[str]) -> str:
    """A list of strings as Go's %q prints it: ["a" "b"]."""
    return "[" + " ".join(json.dumps(v) for v in values) + "]"


def _timestamp(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64decode(text: str) -> bytes:
    """Unpadded base64url, strictly: the lenient decoder would skip stray characters, and
    a token with them added would verify like the original."""
    if not _BASE64URL.fullmatch(text):
        raise ValueError("not unpadded base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64json(value: KubeObject) -> str:
    return _b64encode(json.dumps(value, separators=(",", ":"), sort_keys=True).encode())


def _b64int(value: int) -> str:
    return _b64encode(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def _create_key_file(path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as file:  # mkstemp creates it mode 0600
            file.write(data)
        # link, not rename: whoever links first wins, and nobody's key is replaced
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        os.unlink(temporary)
