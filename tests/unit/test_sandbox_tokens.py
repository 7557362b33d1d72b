"""ServiceAccount tokens: issued, verified and reviewed as the apiserver does.

The objects a review looks up come from a dict standing in for the store (the lookup is
the whole interface between tokens.py and the server). Signatures are checked
independently of tokens.py, with ``cryptography`` and the key it publishes.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from gitmoor.errors import GitmoorError
from gitmoor.sandbox.errors import ApiError
from gitmoor.sandbox.tokens import (
    API_AUDIENCES,
    ISSUER,
    LEEWAY_SECONDS,
    BoundObject,
    TokenIssuer,
    token_request,
    token_review,
)

NOW = 1_900_000_000.0
NS = "team-a"


class Objects:
    """The stored objects a review may look up, by (resource, namespace, name)."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str, str], dict[str, Any]] = {}

    def __call__(self, resource: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.items.get((resource, namespace, name))

    def put(self, resource: str, namespace: str, name: str, **extra: Any) -> dict[str, Any]:
        metadata = {"name": name, "uid": str(uuid.uuid4())}
        if namespace:
            metadata["namespace"] = namespace
        obj = {"metadata": metadata, **extra}
        self.items[(resource, namespace, name)] = obj
        return obj

    def remove(self, resource: str, namespace: str, name: str) -> None:
        del self.items[(resource, namespace, name)]


def uid(obj: dict[str, Any]) -> str:
    return str(obj["metadata"]["uid"])


def segments(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes]:
    def decode(part: str) -> bytes:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))

    header, payload, signature = token.split(".")
    return json.loads(decode(header)), json.loads(decode(payload)), decode(signature)


def encode(value: dict[str, Any]) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def stamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> TokenIssuer:
    return TokenIssuer.load(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def objects() -> Objects:
    found = Objects()
    found.put("serviceaccounts", NS, "builder")
    found.put("nodes", "", "node-1")
    found.put("pods", NS, "web-0", spec={"serviceAccountName": "builder", "nodeName": "node-1"})
    found.put("secrets", NS, "builder-token")
    return found


def sa_uid(objects: Objects) -> str:
    return uid(objects.items[("serviceaccounts", NS, "builder")])


def issue(
    issuer: TokenIssuer,
    objects: Objects,
    *,
    audiences: tuple[str, ...] = API_AUDIENCES,
    bound: BoundObject | None = None,
    now: float = NOW,
) -> str:
    token, _ = issuer.issue(
        NS, "builder", sa_uid(objects), audiences=audiences, expiration_seconds=3600,
        bound_object=bound, now=now,
    )  # fmt: skip
    return token


# --- the key -----------------------------------------------------------------------------


@pytest.fixture
def open_umask() -> Iterator[None]:
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.usefixtures("open_umask")
def test_key_file_is_created_once_private_and_kept(tmp_path: Path) -> None:
    directory = tmp_path / "pki"
    first = TokenIssuer.load(directory)
    key_file = directory / "sa.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert [p.name for p in directory.iterdir()] == ["sa.key"]  # no temporary left behind
    key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == 2048
    again = TokenIssuer.load(directory)
    assert again.key_id == first.key_id
    assert again.public_key_pem() == first.public_key_pem()


def test_a_key_file_that_is_not_a_key_is_named(tmp_path: Path) -> None:
    (tmp_path / "sa.key").write_text("not a key\n")
    with pytest.raises(GitmoorError) as caught:
        TokenIssuer.load(tmp_path)
    assert caught.value.location.file == str(tmp_path / "sa.key")


def test_tokens_of_one_directory_verify_after_a_restart(tmp_path: Path, objects: Objects) -> None:
    token = issue(TokenIssuer.load(tmp_path), objects)
    status = TokenIssuer.load(tmp_path).review(token, [], lookup=objects, now=NOW)
    assert status.get("authenticated") is True


# --- issuing -----------------------------------------------------------------------------


def test_claims_are_the_apiservers(issuer: TokenIssuer, objects: Objects) -> None:
    token, expires = issuer.issue(
        NS, "builder", sa_uid(objects), audiences=["vault", "api"], expiration_seconds=1200,
        now=NOW + 0.7,
    )  # fmt: skip
    header, claims, _ = segments(token)
    assert header == {"alg": "RS256", "kid": issuer.key_id}
    assert set(claims) == {"aud", "exp", "iat", "iss", "jti", "kubernetes.io", "nbf", "sub"}
    assert claims["iss"] == ISSUER
    assert claims["sub"] == f"system:serviceaccount:{NS}:builder"
    assert claims["aud"] == ["vault", "api"]
    assert claims["iat"] == claims["nbf"] == int(NOW)
    assert claims["exp"] == int(NOW) + 1200
    assert str(uuid.UUID(claims["jti"])) == claims["jti"]
    assert claims["kubernetes.io"] == {
        "namespace": NS,
        "serviceaccount": {"name": "builder", "uid": sa_uid(objects)},
    }
    assert expires == stamp(NOW + 1200)
    # one audience is still a list: Vault's login decodes "aud" into a list of strings
    single, _ = issuer.issue(NS, "builder", "u", audiences=["vault"], expiration_seconds=600)
    assert segments(single)[1]["aud"] == ["vault"]


def test_every_token_has_its_own_id(issuer: TokenIssuer, objects: Objects) -> None:
    ids = {segments(issue(issuer, objects))[1]["jti"] for _ in range(3)}
    assert len(ids) == 3


def test_signature_verifies_with_the_published_key(issuer: TokenIssuer, objects: Objects) -> None:
    token = issue(issuer, objects)
    public = serialization.load_pem_public_key(issuer.public_key_pem().encode())
    assert isinstance(public, rsa.RSAPublicKey)
    signing_input, _, _ = token.rpartition(".")
    public.verify(segments(token)[2], signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())


def test_jwks_and_discovery_publish_the_key(issuer: TokenIssuer) -> None:
    (key,) = issuer.jwks()["keys"]
    assert {k: key[k] for k in ("use", "kty", "alg", "kid")} == {
        "use": "sig", "kty": "RSA", "alg": "RS256", "kid": issuer.key_id,
    }  # fmt: skip

    def number(text: str) -> int:
        return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")

    public = serialization.load_pem_public_key(issuer.public_key_pem().encode())
    assert isinstance(public, rsa.RSAPublicKey)
    assert public.public_numbers() == rsa.RSAPublicNumbers(number(key["e"]), number(key["n"]))
    discovery = issuer.openid_configuration("https://127.0.0.1:6443/openid/v1/jwks")
    assert discovery == {
        "issuer": ISSUER,
        "jwks_uri": "https://127.0.0.1:6443/openid/v1/jwks",
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }


def test_an_ecdsa_key_signs_es256(objects: Objects) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    es = TokenIssuer(key)
    token = issue(es, objects)
    header, _, signature = segments(token)
    assert header["alg"] == "ES256"
    assert len(signature) == 64  # r || s, not DER
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    key.public_key().verify(der, token.rpartition(".")[0].encode(), ec.ECDSA(hashes.SHA256()))
    assert es.review(token, [], lookup=objects, now=NOW).get("authenticated") is True
    (jwk,) = es.jwks()["keys"]
    assert (jwk["kty"], jwk["crv"], jwk["alg"]) == ("EC", "P-256", "ES256")
    with pytest.raises(ValueError, match="P-256"):
        TokenIssuer(ec.generate_private_key(ec.SECP384R1()))


# --- reviewing ---------------------------------------------------------------------------


def test_review_round_trip(issuer: TokenIssuer, objects: Objects) -> None:
    token = issue(issuer, objects, audiences=("vault", ISSUER))
    status = issuer.review(token, ["vault"], lookup=objects, now=NOW + 10)
    jti = segments(token)[1]["jti"]
    assert status == {
        "authenticated": True,
        "user": {
            "username": f"system:serviceaccount:{NS}:builder",
            "uid": sa_uid(objects),
            "groups": [
                "system:serviceaccounts",
                f"system:serviceaccounts:{NS}",
                "system:authenticated",
            ],
            "extra": {"authentication.kubernetes.io/credential-id": [f"JTI={jti}"]},
        },
        "audiences": ["vault"],
    }


def test_no_audiences_asked_means_the_api_servers(issuer: TokenIssuer, objects: Objects) -> None:
    for_api = issue(issuer, objects)
    assert issuer.review(for_api, [], lookup=objects, now=NOW)["audiences"] == [ISSUER]
    for_vault = issue(issuer, objects, audiences=("vault",))
    status = issuer.review(for_vault, [], lookup=objects, now=NOW)
    assert "authenticated" not in status
    assert status["error"] == (
        f'token audiences ["vault"] is invalid for the target audiences ["{ISSUER}"]'
    )


def test_wrong_audience(issuer: TokenIssuer, objects: Objects) -> None:
    token = issue(issuer, objects, audiences=("vault",))
    status = issuer.review(token, ["openbao", "consul"], lookup=objects, now=NOW)
    assert status == {
        "user": {},
        "error": 'token audiences ["vault"] is invalid for the target audiences '
        '["openbao" "consul"]',
    }


def test_expiry_with_the_apiservers_leeway(issuer: TokenIssuer, objects: Objects) -> None:
    token = issue(issuer, objects)  # valid from NOW for 3600 s
    end = NOW + 3600
    assert issuer.review(token, [], lookup=objects, now=end + LEEWAY_SECONDS)["authenticated"]
    late = issuer.review(token, [], lookup=objects, now=end + LEEWAY_SECONDS + 1)
    assert late == {"user": {}, "error": "service account token has expired"}
    early = issuer.review(token, [], lookup=objects, now=NOW - LEEWAY_SECONDS - 1)
    assert early["error"] == "service account token is not valid yet"


def test_tampered_tokens_are_refused(issuer: TokenIssuer, objects: Objects) -> None:
    objects.put("serviceaccounts", "kube-system", "admin")
    token = issue(issuer, objects)
    header, claims, _ = segments(token)
    head, payload, signature = token.split(".")
    other = dict(claims, sub="system:serviceaccount:kube-system:admin")
    other["kubernetes.io"] = {"namespace": "kube-system", "serviceaccount": {"name": "admin"}}
    forged = {
        "payload changed": f"{head}.{encode(other)}.{signature}",
        "signature changed": f"{head}.{payload}.{signature[:-4]}AAAA",
        "signature padded": f"{head}.{payload}.{signature}==",
        "stray character": f"{head}.{payload}.{signature[:10]}!{signature[10:]}",
        "alg none": f"{encode(dict(header, alg='none'))}.{payload}.",
        "alg HS256": f"{encode(dict(header, alg='HS256'))}.{payload}.{signature}",
        "no signature": f"{head}.{payload}",
    }
    for what, text in forged.items():
        status = issuer.review(text, [], lookup=objects, now=NOW)
        assert "authenticated" not in status, what
        assert status["user"] == {}, what
        assert status["error"], what


def test_tokens_not_ours_are_an_invalid_bearer_token(issuer: TokenIssuer, objects: Objects) -> None:
    _, claims, _ = segments(issue(issuer, objects))
    other_issuer = f"{encode({'alg': 'RS256'})}.{encode(dict(claims, iss='https://x'))}.c2ln"
    for text in ("", "static-bearer-token", "a.b.c", other_issuer):
        assert issuer.review(text, [], lookup=objects, now=NOW) == {
            "user": {},
            "error": "invalid bearer token",
        }, text


def test_a_token_of_another_key_is_refused(
    tmp_path: Path, issuer: TokenIssuer, objects: Objects
) -> None:
    stranger = TokenIssuer.load(tmp_path)
    status = issuer.review(issue(stranger, objects), [], lookup=objects, now=NOW)
    assert status["error"] == "go-jose/go-jose: error in cryptographic primitive"


def test_deleted_service_account(issuer: TokenIssuer, objects: Objects) -> None:
    token = issue(issuer, objects)
    objects.remove("serviceaccounts", NS, "builder")
    status = issuer.review(token, [], lookup=objects, now=NOW)
    assert status == {"user": {}, "error": 'serviceaccounts "builder" not found'}


def test_recreated_service_account(issuer: TokenIssuer, objects: Objects) -> None:
    token = issue(issuer, objects)
    old = sa_uid(objects)
    new = uid(objects.put("serviceaccounts", NS, "builder"))
    status = issuer.review(token, [], lookup=objects, now=NOW)
    assert status["error"] == f"service account UID ({new}) does not match claim ({old})"


def test_service_account_being_deleted(issuer: TokenIssuer, objects: Objects) -> None:
    token = issue(issuer, objects)
    account = objects.items[("serviceaccounts", NS, "builder")]
    account["metadata"]["deletionTimestamp"] = stamp(NOW)
    # within the leeway the token still works, after it not
    assert issuer.review(token, [], lookup=objects, now=NOW + LEEWAY_SECONDS)["authenticated"]
    later = issuer.review(token, [], lookup=objects, now=NOW + LEEWAY_SECONDS + 2)
    assert later["error"] == f"service account {NS}/builder has been deleted"


def test_pod_bound_token(issuer: TokenIssuer, objects: Objects) -> None:
    pod = objects.items[("pods", NS, "web-0")]
    node = objects.items[("nodes", "", "node-1")]
    bound = BoundObject("Pod", "web-0", uid(pod), BoundObject("Node", "node-1", uid(node)))
    token = issue(issuer, objects, bound=bound)
    assert segments(token)[1]["kubernetes.io"] == {
        "namespace": NS,
        "serviceaccount": {"name": "builder", "uid": sa_uid(objects)},
        "pod": {"name": "web-0", "uid": uid(pod)},
        "node": {"name": "node-1", "uid": uid(node)},
    }
    extra = issuer.review(token, [], lookup=objects, now=NOW)["user"]["extra"]
    assert extra == {
        "authentication.kubernetes.io/credential-id": [f"JTI={segments(token)[1]['jti']}"],
        "authentication.kubernetes.io/node-name": ["node-1"],
        "authentication.kubernetes.io/node-uid": [uid(node)],
        "authentication.kubernetes.io/pod-name": ["web-0"],
        "authentication.kubernetes.io/pod-uid": [uid(pod)],
    }
    # a pod-bound token reports its node without needing it
    objects.remove("nodes", "", "node-1")
    assert issuer.review(token, [], lookup=objects, now=NOW)["authenticated"]
    objects.remove("pods", NS, "web-0")
    gone = issuer.review(token, [], lookup=objects, now=NOW)
    assert gone["error"] == "service account token has been invalidated"
    recreated = uid(objects.put("pods", NS, "web-0"))
    status = issuer.review(token, [], lookup=objects, now=NOW)
    assert status["error"] == (
        f"pod UID ({recreated}) does not match service account pod ref claim ({uid(pod)})"
    )


def test_secret_and_node_bound_tokens(issuer: TokenIssuer, objects: Objects) -> None:
    secret = objects.items[("secrets", NS, "builder-token")]
    node = objects.items[("nodes", "", "node-1")]
    for_secret = issue(issuer, objects, bound=BoundObject("Secret", "builder-token", uid(secret)))
    for_node = issue(issuer, objects, bound=BoundObject("Node", "node-1", uid(node)))
    assert segments(for_secret)[1]["kubernetes.io"]["secret"] == {
        "name": "builder-token",
        "uid": uid(secret),
    }
    assert issuer.review(for_secret, [], lookup=objects, now=NOW)["authenticated"]
    node_user = issuer.review(for_node, [], lookup=objects, now=NOW)["user"]
    assert node_user["extra"]["authentication.kubernetes.io/node-name"] == ["node-1"]
    objects.remove("secrets", NS, "builder-token")
    objects.remove("nodes", "", "node-1")
    for token in (for_secret, for_node):
        status = issuer.review(token, [], lookup=objects, now=NOW)
        assert status["error"] == "service account token has been invalidated"


# --- TokenRequest ------------------------------------------------------------------------


def test_token_request_object(issuer: TokenIssuer, objects: Objects) -> None:
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}}
    answer = token_request(issuer, body, namespace=NS, name="builder", lookup=objects, now=NOW)
    token = answer["status"]["token"]
    assert answer == {
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {
            "name": "builder",
            "namespace": NS,
            "uid": sa_uid(objects),
            "creationTimestamp": stamp(NOW),
        },
        "spec": {"audiences": [ISSUER], "expirationSeconds": 3600},
        "status": {"token": token, "expirationTimestamp": stamp(NOW + 3600)},
    }
    assert segments(token)[1]["exp"] == NOW + 3600
    assert issuer.review(token, [], lookup=objects, now=NOW)["authenticated"]


def test_token_request_bound_to_a_pod(issuer: TokenIssuer, objects: Objects) -> None:
    pod = objects.items[("pods", NS, "web-0")]
    ref = {"kind": "Pod", "apiVersion": "v1", "name": "web-0", "uid": uid(pod)}
    body = {"spec": {"audiences": ["vault"], "expirationSeconds": 600, "boundObjectRef": ref}}
    answer = token_request(issuer, body, namespace=NS, name="builder", lookup=objects, now=NOW)
    assert answer["spec"] == {
        "audiences": ["vault"],
        "expirationSeconds": 600,
        "boundObjectRef": ref,
    }
    private = segments(answer["status"]["token"])[1]["kubernetes.io"]
    assert private["pod"] == {"name": "web-0", "uid": uid(pod)}
    assert private["node"] == {"name": "node-1", "uid": uid(objects.items[("nodes", "", "node-1")])}


def test_token_request_for_a_pod_on_a_missing_node(issuer: TokenIssuer, objects: Objects) -> None:
    objects.remove("nodes", "", "node-1")
    ref = {"kind": "Pod", "apiVersion": "v1", "name": "web-0"}
    answer = token_request(
        issuer, {"spec": {"boundObjectRef": ref}}, namespace=NS, name="builder", lookup=objects
    )
    assert segments(answer["status"]["token"])[1]["kubernetes.io"]["node"] == {"name": "node-1"}


def refused(
    issuer: TokenIssuer, objects: Objects, body: dict[str, Any], name: str = "builder"
) -> ApiError:
    with pytest.raises(ApiError) as caught:
        token_request(issuer, body, namespace=NS, name=name, lookup=objects, now=NOW)
    return caught.value


def test_token_request_errors(issuer: TokenIssuer, objects: Objects) -> None:
    missing = refused(issuer, objects, {}, name="nobody")
    assert (missing.code, missing.reason) == (404, "NotFound")
    assert missing.message == 'serviceaccounts "nobody" not found'

    short = refused(issuer, objects, {"spec": {"expirationSeconds": 60}})
    assert (short.code, short.reason) == (422, "Invalid")
    assert short.message == (
        'TokenRequest.authentication.k8s.io "" is invalid: spec.expirationSeconds: '
        "Invalid value: 60: may not specify a duration less than 10 minutes"
    )
    assert short.status()["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": "Invalid value: 60: may not specify a duration less than 10 minutes",
            "field": "spec.expirationSeconds",
        }
    ]
    long = refused(issuer, objects, {"spec": {"expirationSeconds": (1 << 32) + 1}})
    assert long.code == 422
    assert "larger than 2^32 seconds" in long.message

    renamed = refused(issuer, objects, {"metadata": {"name": "other"}})
    assert renamed.code == 422
    assert renamed.message == (
        'TokenRequest.authentication.k8s.io "builder" is invalid: metadata.name: '
        'Invalid value: "other": must match the service account name if specified'
    )
    elsewhere = refused(issuer, objects, {"metadata": {"namespace": "team-b"}})
    assert elsewhere.code == 422
    assert "metadata.namespace" in elsewhere.message

    wrong_uid = refused(issuer, objects, {"metadata": {"uid": "1234"}})
    assert (wrong_uid.code, wrong_uid.reason) == (409, "Conflict")
    assert wrong_uid.message.startswith(
        'Operation cannot be fulfilled on TokenRequest.authentication.k8s.io "builder": '
        "the UID in the token request (1234)"
    )

    undecodable: list[dict[str, Any]] = [
        {"spec": {"expirationSeconds": "3600"}},
        {"spec": {"audiences": "vault"}},
        {"spec": []},
        {"kind": "TokenReview"},
        {"apiVersion": "authentication.k8s.io/v1beta1"},
    ]
    for body in undecodable:
        error = refused(issuer, objects, body)
        assert (error.code, error.reason) == (400, "BadRequest"), body


def test_token_request_bound_object_errors(issuer: TokenIssuer, objects: Objects) -> None:
    def bound_to(**ref: str) -> ApiError:
        return refused(issuer, objects, {"spec": {"boundObjectRef": ref}})

    deployment = bound_to(kind="Deployment", apiVersion="apps/v1", name="web")
    assert deployment.code == 400
    assert deployment.message == "cannot bind token to object of type apps/v1, Kind=Deployment"
    missing = bound_to(kind="Pod", apiVersion="v1", name="web-9")
    assert (missing.code, missing.message) == (404, 'pods "web-9" not found')
    stale = bound_to(kind="Secret", apiVersion="v1", name="builder-token", uid="old")
    assert (stale.code, stale.reason) == (409, "Conflict")
    assert stale.message.startswith('Operation cannot be fulfilled on Secret "builder-token"')
    objects.put("pods", NS, "other", spec={"serviceAccountName": "runner"})
    foreign = bound_to(kind="Pod", apiVersion="v1", name="other")
    assert foreign.code == 400
    assert foreign.message == (
        'cannot bind token for serviceaccount "builder" to pod running with different '
        "serviceaccount name."
    )


# --- TokenReview -------------------------------------------------------------------------


def test_token_review_object(issuer: TokenIssuer, objects: Objects) -> None:
    token = issue(issuer, objects, audiences=("vault",))
    body = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "spec": {"token": token, "audiences": ["vault"]},
    }
    answer = token_review(issuer, body, lookup=objects, now=NOW)
    assert answer["kind"] == "TokenReview"
    assert answer["apiVersion"] == "authentication.k8s.io/v1"
    assert answer["spec"] == body["spec"]
    assert answer["status"]["authenticated"] is True
    assert answer["status"]["user"]["username"] == f"system:serviceaccount:{NS}:builder"
    assert answer["status"]["audiences"] == ["vault"]
    # Vault's login splits the username on ":" and compares the uid to the token's claim
    namespace, name = answer["status"]["user"]["username"].split(":")[2:]
    assert (namespace, name) == (NS, "builder")
    assert (
        answer["status"]["user"]["uid"]
        == segments(token)[1]["kubernetes.io"]["serviceaccount"]["uid"]
    )

    refused_answer = token_review(issuer, {"spec": {"token": "nope"}}, lookup=objects, now=NOW)
    assert refused_answer["status"] == {"user": {}, "error": "invalid bearer token"}


def test_token_review_needs_a_token(issuer: TokenIssuer, objects: Objects) -> None:
    without: list[dict[str, Any]] = [{}, {"spec": {}}, {"spec": {"token": ""}}]
    for body in without:
        with pytest.raises(ApiError) as caught:
            token_review(issuer, body, lookup=objects)
        assert caught.value.code == 400
        assert caught.value.message == "token is required for TokenReview in authentication"
    with pytest.raises(ApiError) as caught:
        token_review(issuer, {"spec": {"token": 5}}, lookup=objects)
    assert caught.value.code == 400
