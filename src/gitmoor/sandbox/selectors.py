"""Label and field selectors as the Kubernetes API server parses and matches them.

The label selector grammar, its validation of keys and values and its error messages follow
apimachinery's ``labels.Parse``; field selectors follow ``fields.ParseSelector`` (``=``,
``==``, ``!=``, backslash escapes in values), with the field labels each resource has
(:func:`field_labels`: pods by node and phase, events by the object they are about...).
A bad selector is an ``ApiError`` 400 BadRequest worded as the apiserver words it.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gitmoor.sandbox.errors import bad_request
from gitmoor.sandbox.schema import ResourceInfo

# Validation of label keys and values: apimachinery's util/validation, messages included.
_QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QUALIFIED_NAME = re.compile(_QUALIFIED_NAME_FMT)
_QUALIFIED_NAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character"
)
_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = f"{_DNS1123_LABEL_FMT}(\\.{_DNS1123_LABEL_FMT})*"
_DNS1123_SUBDOMAIN = re.compile(_DNS1123_SUBDOMAIN_FMT)
_DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character"
)
_LABEL_VALUE_FMT = f"({_QUALIFIED_NAME_FMT})?"
_LABEL_VALUE = re.compile(_LABEL_VALUE_FMT)
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
    "or '.', and must start and end with an alphanumeric character"
)


def _regex_error(message: str, fmt: str, *examples: str) -> str:
    shown = "".join(f"{' or ' if i else ''}'{example}', " for i, example in enumerate(examples))
    return f"{message} (e.g. {shown}regex used for validation is '{fmt}')"


def _max_len_error(limit: int) -> str:
    return f"must be no more than {limit} characters"


def _qualified_name_errors(key: str) -> list[str]:
    parts = key.split("/")
    if len(parts) > 2:
        return [
            "a qualified name "
            + _regex_error(_QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    errors: list[str] = []
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            errors.append("prefix part must be non-empty")
        else:
            if len(prefix.encode()) > 253:
                errors.append("prefix part " + _max_len_error(253))
            if not _DNS1123_SUBDOMAIN.fullmatch(prefix):
                errors.append(
                    "prefix part "
                    + _regex_error(_DNS1123_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN_FMT, "example.com")
                )
    if not name:
        errors.append("name part must be non-empty")
    elif len(name.encode()) > 63:
        errors.append("name part " + _max_len_error(63))
    if not _QUALIFIED_NAME.fullmatch(name):
        errors.append(
            "name part "
            + _regex_error(_QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
        )
    return errors


def _label_value_errors(value: str) -> list[str]:
    errors: list[str] = []
    if len(value.encode()) > 63:
        errors.append(_max_len_error(63))
    if not _LABEL_VALUE.fullmatch(value):
        errors.append(
            _regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345")
        )
    return errors


def _invalid(path: str, value: str, details: list[str]) -> str:
    """A field.Error of type Invalid as Go formats it."""
    return f"{path}: Invalid value: {json.dumps(value, ensure_ascii=False)}: {'; '.join(details)}"


class _Tok(enum.Enum):
    END = enum.auto()
    CLOSE = enum.auto()
    COMMA = enum.auto()
    NOT = enum.auto()
    DOUBLE_EQUALS = enum.auto()
    EQUALS = enum.auto()
    GREATER = enum.auto()
    IDENTIFIER = enum.auto()
    IN = enum.auto()
    LESS = enum.auto()
    NOT_EQUALS = enum.auto()
    NOT_IN = enum.auto()
    OPEN = enum.auto()


_LITERALS = {
    ")": _Tok.CLOSE,
    ",": _Tok.COMMA,
    "!": _Tok.NOT,
    "==": _Tok.DOUBLE_EQUALS,
    "=": _Tok.EQUALS,
    ">": _Tok.GREATER,
    "in": _Tok.IN,
    "<": _Tok.LESS,
    "!=": _Tok.NOT_EQUALS,
    "notin": _Tok.NOT_IN,
    "(": _Tok.OPEN,
}
_SPECIAL = frozenset("=!(),><")
_WHITESPACE = frozenset(" \t\r\n")
# Binary operators in the order the apiserver lists them in its errors.
_BINARY = {
    _Tok.IN: "in",
    _Tok.NOT_IN: "notin",
    _Tok.EQUALS: "=",
    _Tok.DOUBLE_EQUALS: "==",
    _Tok.NOT_EQUALS: "!=",
    _Tok.GREATER: "gt",
    _Tok.LESS: "lt",
}
_INTEGER = re.compile(r"[-+]?[0-9]+")
EXISTS = "exists"
DOES_NOT_EXIST = "!"


def _lex(text: str) -> list[tuple[_Tok, str]]:
    tokens: list[tuple[_Tok, str]] = []
    pos, end = 0, len(text)
    while True:
        while pos < end and text[pos] in _WHITESPACE:
            pos += 1
        if pos == end:
            tokens.append((_Tok.END, ""))
            return tokens
        start = pos
        if text[pos] in _SPECIAL:
            # The longest run of symbols that is still an operator: "!=" over "!", "==" over "=".
            literal = ""
            while pos < end and text[pos] in _SPECIAL and text[start : pos + 1] in _LITERALS:
                pos += 1
                literal = text[start:pos]
            tokens.append((_LITERALS[literal], literal))
        else:
            while pos < end and text[pos] not in _SPECIAL and text[pos] not in _WHITESPACE:
                pos += 1
            word = text[start:pos]
            tokens.append((_LITERALS.get(word, _Tok.IDENTIFIER), word))


class _SelectorSyntaxError(Exception):
    pass


@dataclass(frozen=True)
class Requirement:
    """One requirement: ``key`` related to ``values`` by ``operator`` (``in``, ``notin``,
    ``=``, ``==``, ``!=``, ``gt``, ``lt``, ``exists``, ``!``)."""

    key: str
    operator: str
    values: tuple[str, ...]

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        if self.operator in ("in", "=", "=="):
            return value is not None and value in self.values
        if self.operator in ("notin", "!="):
            return value is None or value not in self.values
        if self.operator == EXISTS:
            return value is not None
        if self.operator == DOES_NOT_EXIST:
            return value is None
        # gt / lt: both sides must be integers, as the apiserver compares them.
        have, bound = _as_int(value or ""), _as_int(self.values[0])
        if have is None or bound is None:
            return False
        return have > bound if self.operator == "gt" else have < bound


def _as_int(text: str) -> int | None:
    """The value of a decimal int64 as Go's strconv.ParseInt reads it, else None."""
    if not _INTEGER.fullmatch(text):
        return None
    value = int(text)
    return value if -(2**63) <= value < 2**63 else None


def _requirement(key: str, operator: str, values: list[str]) -> Requirement:
    """apimachinery's NewRequirement: the value checks, errors aggregated."""
    errors: list[str] = []
    if operator in ("gt", "lt"):
        errors.extend(
            _invalid(
                f"values[{i}]", value, ["for 'Gt', 'Lt' operators, the value must be an integer"]
            )
            for i, value in enumerate(values)
            if _as_int(value) is None
        )
    for i, value in enumerate(values):
        details = _label_value_errors(value)
        if details:
            errors.append(_invalid(f"values[{i}][{key}]", value, details))
    if len(errors) == 1:
        raise _SelectorSyntaxError(errors[0])
    if errors:
        raise _SelectorSyntaxError(f"[{', '.join(errors)}]")
    return Requirement(key, operator, tuple(values))


class _LabelParser:
    """A port of apimachinery's label selector parser, so that what it accepts and the
    errors it reports are the apiserver's."""

    def __init__(self, text: str) -> None:
        self.tokens = _lex(text)
        self.position = 0

    def _peek(self, values: bool = True) -> tuple[_Tok, str]:
        return self._as_value(self.tokens[self.position], values)

    def _take(self, values: bool = True) -> tuple[_Tok, str]:
        self.position += 1
        return self._as_value(self.tokens[self.position - 1], values)

    @staticmethod
    def _as_value(token: tuple[_Tok, str], values: bool) -> tuple[_Tok, str]:
        # Where a value may stand, "in" and "notin" are plain words: "x in (in)".
        if values and token[0] in (_Tok.IN, _Tok.NOT_IN):
            return _Tok.IDENTIFIER, token[1]
        return token

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            tok, literal = self._peek()
            if tok == _Tok.END:
                return requirements
            if tok not in (_Tok.IDENTIFIER, _Tok.NOT):
                raise _SelectorSyntaxError(
                    f"found '{literal}', expected: !, identifier, or 'end of string'"
                )
            try:
                requirements.append(self._requirement())
            except _SelectorSyntaxError as err:
                raise _SelectorSyntaxError(f"unable to parse requirement: {err}") from None
            tok, literal = self._take()
            if tok == _Tok.END:
                return requirements
            if tok != _Tok.COMMA:
                raise _SelectorSyntaxError(f"found '{literal}', expected: ',' or 'end of string'")
            tok, literal = self._peek()
            if tok not in (_Tok.IDENTIFIER, _Tok.NOT):
                raise _SelectorSyntaxError(f"found '{literal}', expected: identifier after ','")

    def _requirement(self) -> Requirement:
        tok, key = self._take()
        negated = tok == _Tok.NOT
        if negated:
            tok, key = self._take()
        if tok != _Tok.IDENTIFIER:
            raise _SelectorSyntaxError(f"found '{key}', expected: identifier")
        details = _qualified_name_errors(key)
        if details:
            raise _SelectorSyntaxError(_invalid("<nil>", key, details))
        if negated:
            return Requirement(key, DOES_NOT_EXIST, ())
        if self._peek()[0] in (_Tok.END, _Tok.COMMA):
            return Requirement(key, EXISTS, ())
        tok, literal = self._take(values=False)
        operator = _BINARY.get(tok)
        if operator is None:
            raise _SelectorSyntaxError(
                f"found '{literal}', expected: {', '.join(_BINARY.values())}"
            )
        values = self._set() if operator in ("in", "notin") else self._exact()
        return _requirement(key, operator, sorted(values))

    def _set(self) -> set[str]:
        tok, literal = self._take()
        if tok != _Tok.OPEN:
            raise _SelectorSyntaxError(f"found '{literal}' expected: '('")
        tok, literal = self._peek()
        if tok == _Tok.CLOSE:
            self._take()
            return {""}
        if tok not in (_Tok.IDENTIFIER, _Tok.COMMA):
            raise _SelectorSyntaxError(f"found '{literal}', expected: ',', ')' or identifier")
        values = self._identifiers()
        self._take()  # the ")" that ended the list
        return values

    def _identifiers(self) -> set[str]:
        """A comma-separated list whose empty items are empty strings: "(a,,b)", "(,a)"."""
        values: set[str] = set()
        while True:
            tok, literal = self._take()
            if tok == _Tok.IDENTIFIER:
                values.add(literal)
                following, after = self._peek()
                if following == _Tok.CLOSE:
                    return values
                if following != _Tok.COMMA:
                    raise _SelectorSyntaxError(f"found '{after}', expected: ',' or ')'")
            elif tok == _Tok.COMMA:
                if not values:
                    values.add("")
                following, _ = self._peek()
                if following == _Tok.CLOSE:
                    values.add("")
                    return values
                if following == _Tok.COMMA:
                    self._take()
                    values.add("")
            else:
                raise _SelectorSyntaxError(f"found '{literal}', expected: ',', or identifier")

    def _exact(self) -> set[str]:
        if self._peek()[0] in (_Tok.END, _Tok.COMMA):
            return {""}
        tok, literal = self._take()
        if tok != _Tok.IDENTIFIER:
            raise _SelectorSyntaxError(f"found '{literal}', expected: identifier")
        return {literal}


@dataclass(frozen=True)
class LabelSelector:
    """A parsed ``labelSelector``: all requirements must match (sorted by key, as parsed)."""

    requirements: tuple[Requirement, ...]

    @classmethod
    def parse(cls, text: str) -> LabelSelector:
        try:
            requirements = _LabelParser(text).parse()
        except _SelectorSyntaxError as err:
            raise bad_request(str(err)) from None
        return cls(tuple(sorted(requirements, key=lambda r: r.key)))

    @property
    def empty(self) -> bool:
        """Selects everything (the apiserver then reports remainingItemCount)."""
        return not self.requirements

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(requirement.matches(labels) for requirement in self.requirements)


FieldValue = Callable[[Mapping[str, Any]], str]


def _text(path: str) -> FieldValue:
    """A string field; an unset one selects as the empty string, as in the apiserver's
    field sets."""
    steps = path.split(".")

    def value(obj: Mapping[str, Any]) -> str:
        found = _dig(obj, steps)
        return found if isinstance(found, str) else ""

    return value


def _number(path: str) -> FieldValue:
    """An integer field, as Go's strconv.Itoa writes it (an unset one is 0)."""
    steps = path.split(".")

    def value(obj: Mapping[str, Any]) -> str:
        found = _dig(obj, steps)
        return str(found) if isinstance(found, int) and not isinstance(found, bool) else "0"

    return value


def _flag(path: str) -> FieldValue:
    """A boolean field, as Go's strconv.FormatBool writes it (an unset one is false)."""
    steps = path.split(".")

    def value(obj: Mapping[str, Any]) -> str:
        return "true" if _dig(obj, steps) is True else "false"

    return value


def _first(*values: FieldValue) -> FieldValue:
    """The first non-empty of several fields."""
    return lambda obj: next((v for v in (get(obj) for get in values) if v), "")


def _unset(obj: Mapping[str, Any]) -> str:
    """A label the apiserver accepts but never fills in: it selects as the empty string."""
    return ""


def _dig(obj: Mapping[str, Any], steps: Sequence[str]) -> Any:
    value: Any = obj
    for step in steps:
        value = value.get(step) if isinstance(value, Mapping) else None
    return value


_POD_IP = _text("status.podIP")


def _pod_ip(pod: Mapping[str, Any]) -> str:
    # The registry reads the first of status.podIPs; v1 clients may have set podIP alone.
    ips = _dig(pod, ("status", "podIPs"))
    if isinstance(ips, list) and ips and isinstance(ips[0], Mapping):
        return str(ips[0].get("ip") or "")
    return _POD_IP(pod)


_NAME: Mapping[str, FieldValue] = {"metadata.name": _text("metadata.name")}
_NAME_AND_NAMESPACE: Mapping[str, FieldValue] = {
    **_NAME,
    "metadata.namespace": _text("metadata.namespace"),
}


def _not_supported(label: str) -> str:
    return f"field label not supported: {label}"


def _only_metadata(label: str) -> str:
    return (
        f"{json.dumps(label, ensure_ascii=False)} is not a known field selector: "
        'only "metadata.name", "metadata.namespace"'
    )


@dataclass(frozen=True)
class FieldLabels:
    """The field labels one resource can be selected by, and how they read an object.

    Each label is one kube-apiserver's field label conversion accepts for the kind (for
    the built-in kinds, ``AddFieldLabelConversionFunc`` in pkg/apis/<group>/<version>),
    valued as the kind's registry computes its field set (``GetAttrs`` /
    ``ToSelectableFields`` in pkg/registry). Any other label is refused with ``refusal``:
    the conversion functions word it differently from kind to kind.
    """

    values: Mapping[str, FieldValue]
    refusal: Callable[[str], str] = _not_supported

    def value(self, obj: Mapping[str, Any], label: str) -> str:
        return self.values[label](obj)


# The fallback of kinds without a conversion function of their own (ConfigMaps,
# Deployments, ReplicaSets...): runtime.DefaultMetaV1FieldSelectorConversion.
DEFAULT_FIELD_LABELS = FieldLabels(_NAME_AND_NAMESPACE, _only_metadata)

_CORE_EVENT: Mapping[str, FieldValue] = {
    **_NAME_AND_NAMESPACE,
    **{f"involvedObject.{key}": _text(f"involvedObject.{key}") for key in
       ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")},
    "reason": _text("reason"),
    "reportingComponent": _text("reportingComponent"),
    "source": _first(_text("source.component"), _text("reportingComponent")),
    "type": _text("type"),
}  # fmt: skip
# events.k8s.io/v1 shares the core Event's field set under its own field names.
_EVENTS_EVENT: Mapping[str, FieldValue] = {
    **_NAME_AND_NAMESPACE,
    **{f"regarding.{key}": _text(f"regarding.{key}") for key in
       ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")},
    "reason": _text("reason"),
    "reportingController": _text("reportingController"),
    "source": _first(_text("deprecatedSource.component"), _text("reportingController")),
    "type": _text("type"),
}  # fmt: skip

_BUILTIN_FIELD_LABELS: Mapping[tuple[str, str], FieldLabels] = {
    ("", "pods"): FieldLabels({
        **_NAME_AND_NAMESPACE,
        "spec.nodeName": _text("spec.nodeName"),
        "spec.host": _text("spec.nodeName"),  # what v1 clients of old called spec.nodeName
        "spec.restartPolicy": _text("spec.restartPolicy"),
        "spec.schedulerName": _text("spec.schedulerName"),
        "spec.serviceAccountName": _text("spec.serviceAccountName"),
        "spec.hostNetwork": _flag("spec.hostNetwork"),
        "status.phase": _text("status.phase"),
        "status.podIP": _pod_ip,
        "status.podIPs": _unset,
        "status.nominatedNodeName": _text("status.nominatedNodeName"),
    }),
    ("", "events"): FieldLabels(_CORE_EVENT),
    ("", "namespaces"): FieldLabels({**_NAME, "status.phase": _text("status.phase")}),
    ("", "nodes"): FieldLabels({**_NAME, "spec.unschedulable": _flag("spec.unschedulable")}),
    ("", "replicationcontrollers"): FieldLabels(
        {**_NAME_AND_NAMESPACE, "status.replicas": _number("status.replicas")}
    ),
    ("", "secrets"): FieldLabels({**_NAME_AND_NAMESPACE, "type": _text("type")}),
    ("", "services"): FieldLabels({
        **_NAME_AND_NAMESPACE,
        "spec.clusterIP": _text("spec.clusterIP"),
        "spec.type": _text("spec.type"),
    }),
    ("batch", "jobs"): FieldLabels(
        {**_NAME_AND_NAMESPACE, "status.successful": _number("status.succeeded")},
        lambda label: f"field label {json.dumps(label, ensure_ascii=False)} not supported for Job",
    ),
    ("certificates.k8s.io", "certificatesigningrequests"): FieldLabels(
        {**_NAME, "spec.signerName": _text("spec.signerName")}
    ),
    ("certificates.k8s.io", "clustertrustbundles"): FieldLabels(
        {**_NAME, "spec.signerName": _text("spec.signerName")}
    ),
    ("certificates.k8s.io", "podcertificaterequests"): FieldLabels({
        **_NAME,
        "spec.signerName": _text("spec.signerName"),
        "spec.podName": _text("spec.podName"),
        "spec.nodeName": _text("spec.nodeName"),
    }),
    ("events.k8s.io", "events"): FieldLabels(_EVENTS_EVENT),
    ("resource.k8s.io", "resourceslices"): FieldLabels(
        {**_NAME, "spec.nodeName": _text("spec.nodeName"), "spec.driver": _text("spec.driver")},
        lambda label: f"field label not supported for resource.k8s.io/v1, Kind=ResourceSlice: "
        f"{label}",
    ),
}  # fmt: skip

_SELECTABLE_TYPES: Mapping[str, Callable[[str], FieldValue]] = {
    "string": _text,
    "integer": _number,
    "boolean": _flag,
}


def field_labels(info: ResourceInfo, crd: Mapping[str, Any] | None = None) -> FieldLabels:
    """The field labels of a resource. A custom resource (``crd`` is the CRD serving it)
    has metadata.name, metadata.namespace when namespaced, and the ``selectableFields`` of
    the version asked for, valued as their schema types print (an unset one is empty)."""
    if crd is None:
        return _BUILTIN_FIELD_LABELS.get((info.group, info.plural), DEFAULT_FIELD_LABELS)
    values = dict(_NAME_AND_NAMESPACE if info.namespaced else _NAME)
    versions = (crd.get("spec") or {}).get("versions") or []
    served: Mapping[str, Any] = next((v for v in versions if v.get("name") == info.version), {})
    schema = (served.get("schema") or {}).get("openAPIV3Schema") or {}
    for selectable in served.get("selectableFields") or []:
        path = str(selectable.get("jsonPath") or "").removeprefix(".")
        values[path] = _SELECTABLE_TYPES.get(_schema_type(schema, path), _text)(path)
    return FieldLabels(values)


def _schema_type(schema: Mapping[str, Any], path: str) -> str:
    node: Any = schema
    for step in path.split("."):
        node = (node.get("properties") or {}).get(step) if isinstance(node, Mapping) else None
    return str(node.get("type") or "") if isinstance(node, Mapping) else ""


@dataclass(frozen=True)
class FieldTerm:
    field: str
    equal: bool  # False for "!="
    value: str


def _split_terms(text: str) -> list[str]:
    """Split on commas that a backslash does not escape (the backslash is kept)."""
    terms: list[str] = []
    start, escaped = 0, False
    for i, ch in enumerate(text):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    """Field, operator and raw value; the left side has no escapes, so the first operator
    anywhere splits the term ("!=" and "==" before "=" at the same place)."""
    for i in range(len(term)):
        for operator in ("!=", "==", "="):
            if term.startswith(operator, i):
                return term[:i], operator, term[i + len(operator) :]
    return None


def _unescape(value: str) -> str:
    out: list[str] = []
    escaped = False
    for ch in value:
        if escaped:
            if ch not in "\\,=":
                raise bad_request(f"invalid field selector: invalid escape sequence: \\{ch}")
            out.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch in ",=":
            # Go prints the rune as a number here.
            raise bad_request(f"invalid field selector: unescaped character in value: {ord(ch)}")
        else:
            out.append(ch)
    if escaped:
        raise bad_request("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


@dataclass(frozen=True)
class FieldSelector:
    """A parsed ``fieldSelector``: every term must hold, each label read from an object as
    its resource's :class:`FieldLabels` say."""

    terms: tuple[FieldTerm, ...]
    labels: FieldLabels = DEFAULT_FIELD_LABELS

    @classmethod
    def parse(cls, text: str, labels: FieldLabels = DEFAULT_FIELD_LABELS) -> FieldSelector:
        """Parse as ``fields.ParseSelector`` does, then check each label as the apiserver's
        field label conversion does: ApiError 400 BadRequest for a malformed selector or a
        label the resource does not have."""
        terms: list[FieldTerm] = []
        for part in sorted(_split_terms(text) if text else []):
            if not part:
                continue
            split = _split_term(part)
            if split is None:
                raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
            field, operator, raw = split
            terms.append(FieldTerm(field, operator != "!=", _unescape(raw)))
        for term in terms:
            if term.field not in labels.values:
                raise bad_request(labels.refusal(term.field))
        return cls(tuple(terms), labels)

    @property
    def empty(self) -> bool:
        return not self.terms

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return all((self.labels.value(obj, t.field) == t.value) == t.equal for t in self.terms)
