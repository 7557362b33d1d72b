"""postBuild variable substitution, with the semantics of Flux's kustomize-controller.

Flux substitutes after ``kustomize build``, one object at a time, on the object's YAML
text, with its fork of drone/envsubst (github.com/fluxcd/pkg/envsubst), then parses the
result again. The rules that follow from that, and that this module reproduces:

- ``${var}`` and the bash-like forms ``${var:=default}``, ``${var:-default}``,
  ``${var=default}`` (a default also replaces an *empty* value), ``${#var}``,
  ``${var^}``, ``${var^^}``, ``${var,}``, ``${var,,}``, ``${var:offset:length}``,
  ``${var#pattern}`` (and ``##``, ``%``, ``%%``), ``${var/pattern/replacement}`` (and
  ``//``, ``/#``, ``/%``). Defaults may nest: ``${a:=${b}}``.
- ``$var`` without braces is left as written; ``$$`` becomes ``$``, so ``$${var}`` is the
  literal text ``${var}``.
- Nothing is substituted when no variable has a value; objects labelled or annotated
  ``kustomize.toolkit.fluxcd.io/substitute: disabled`` are left as they are.
- Strict mode (``flux build --strict-substitute``, gitmoor's default) refuses a reference
  to an unset variable that has no default; otherwise it expands to the empty string.
- Variable names must match ``^[_[:alpha:]][_[:alpha:][:digit:]]*$``; values lose their
  newlines.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gitmoor.api.kustomize import DISABLED, SUBSTITUTE_ANNOTATION, PostBuild
from gitmoor.errors import Location, ManifestError, SubstitutionError
from gitmoor.manifests import KubeObject, dump, load_all

VariableLookup = Callable[[str, str], Mapping[str, str] | None]
"""``(kind, name)`` of a ConfigMap or Secret in the Kustomization's namespace → its data
decoded to text, or None when it does not exist."""

VARIABLE_NAME_PATTERN = "^[_[:alpha:]][_[:alpha:][:digit:]]*$"
# Go's [:alpha:] and [:digit:] are ASCII classes.
_VARIABLE_NAME = re.compile(r"[_A-Za-z][_A-Za-z0-9]*")


def resolve_variables(post_build: PostBuild | None, lookup: VariableLookup) -> dict[str, str]:
    """The variables of a Kustomization's ``spec.postBuild``, in Flux's order of precedence.

    ``substituteFrom`` entries are read in order, a later one overriding an earlier one;
    the inline ``substitute`` map overrides them all. A ConfigMap or Secret that does not
    exist is skipped when marked optional and refused otherwise.
    """
    if post_build is None:
        return {}
    variables: dict[str, str] = {}
    for index, reference in enumerate(post_build.substitute_from or []):
        data = lookup(reference.kind, reference.name)
        if data is None:
            if reference.optional:
                continue
            raise SubstitutionError(
                f"{reference.kind} {reference.name!r} not found in the Kustomization's namespace",
                Location(field=f"spec.postBuild.substituteFrom[{index}]"),
            )
        variables.update(_one_line(data))
    variables.update(_one_line(post_build.substitute or {}))
    return variables


def _one_line(values: Mapping[str, str]) -> dict[str, str]:
    # Flux drops newlines from every value so one cannot break the YAML it lands in.
    return {name: value.replace("\n", "") for name, value in values.items()}


def substitute_objects(
    objects: Sequence[KubeObject],
    variables: Mapping[str, str],
    *,
    strict: bool = True,
    origin: str,
) -> list[KubeObject]:
    """The objects with their variable references replaced, as kustomize-controller does.

    ``origin`` names what built the objects (e.g. ``Kustomization flux-system/apps``) for
    error messages. The input objects are not modified.
    """
    if not variables:
        return list(objects)
    result: list[KubeObject] = []
    names_checked = False
    for obj in objects:
        if _substitution_disabled(obj):
            result.append(obj)
            continue
        if not names_checked:
            _check_names(variables, origin)
            names_checked = True
        if not any("$" in text for _, text in _strings(obj, "")):
            # Nothing to replace: the round trip through YAML would give the object back.
            result.append(obj)
            continue
        result.append(_substitute_object(obj, variables, strict=strict, origin=origin))
    return result


def _substitution_disabled(obj: KubeObject) -> bool:
    metadata = obj.get("metadata") or {}
    return any(
        (metadata.get(part) or {}).get(SUBSTITUTE_ANNOTATION) == DISABLED
        for part in ("labels", "annotations")
    )


def _check_names(variables: Mapping[str, str], origin: str) -> None:
    for name in sorted(variables):
        if not _VARIABLE_NAME.fullmatch(name):
            raise SubstitutionError(
                f"variable name {name!r} is not valid: it must match {VARIABLE_NAME_PATTERN}",
                Location(object=origin, field="spec.postBuild"),
            )


def _substitute_object(
    obj: KubeObject, variables: Mapping[str, str], *, strict: bool, origin: str
) -> KubeObject:
    where = _describe(obj)
    try:
        # Flux substitutes in kustomize's serialisation of the object; quoting decides what
        # a value becomes (``replicas: ${N}`` turns into a number), and dump() quotes alike.
        text = envsubst(dump(obj), variables, strict=strict)
    except SubstitutionError as exc:
        field = _failing_field(obj, variables, strict)
        raise SubstitutionError(
            f"{exc.message} (substituting the output of {origin})",
            Location(object=where, field=field),
        ) from None
    try:
        documents = load_all(text, file=where)
    except ManifestError as exc:
        raise SubstitutionError(
            f"the substituted object is not valid YAML: {exc.message} "
            f"(a variable value of {origin} does not fit where it is used)",
            Location(object=where),
        ) from None
    if len(documents) != 1:
        raise SubstitutionError(
            f"substitution turned one object into {len(documents)} documents ({origin})",
            Location(object=where),
        )
    return documents[0]


def _describe(obj: KubeObject) -> str:
    metadata = obj.get("metadata") or {}
    name = metadata.get("name") or "<unnamed>"
    namespace = metadata.get("namespace")
    kind = obj.get("kind") or "<no kind>"
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def _failing_field(obj: Any, variables: Mapping[str, str], strict: bool) -> str | None:
    """The path of the first key or value that fails on its own, to point the user at it."""
    for path, text in _strings(obj, ""):
        if "$" not in text:
            continue
        try:
            envsubst(text, variables, strict=strict)
        except SubstitutionError:
            return path or None
    return None


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            if isinstance(key, str):
                yield child, key
            yield from _strings(item, child)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")


# --- envsubst ------------------------------------------------------------------------------


def envsubst(text: str, variables: Mapping[str, str], *, strict: bool = True) -> str:
    """``text`` with its variable references expanded, as fluxcd/pkg/envsubst does.

    Raises SubstitutionError for a malformed reference, and in strict mode for a
    reference to a variable that is not set and has no default.
    """
    nodes = _Parser(text).template()
    return "".join(_evaluate(node, variables, strict) for node in nodes)


@dataclass(frozen=True)
class _Text:
    value: str


@dataclass(frozen=True)
class _Reference:
    name: str
    operator: str
    args: tuple[_Node, ...] = ()


_Node = _Text | _Reference

# Operators that supply their own value for an unset variable, so strict mode lets them be.
_DEFAULT_OPERATORS = frozenset({"-", "+", "=", "?", ":-", ":+", ":=", ":?"})


class _Parser:
    """A recursive-descent reading of envsubst's grammar, quirks included.

    Outside a reference ``$$`` is an escape for ``$``. Inside the pattern and replacement
    of ``${var/pattern/replacement}``, ``$$``, ``\\/`` and ``\\\\`` escape ``$``, ``/``
    and ``\\``; nowhere else is anything escaped.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def peek(self, offset: int = 0) -> str:
        index = self.pos + offset
        return self.text[index] if index < len(self.text) else ""

    def at_reference(self) -> bool:
        return self.peek() == "$" and self.peek(1) == "{"

    def fail(self, reason: str) -> SubstitutionError:
        return SubstitutionError(f"bad variable reference: {reason}")

    def template(self) -> list[_Node]:
        nodes: list[_Node] = []
        text: list[str] = []
        while self.pos < len(self.text):
            if self.at_reference():
                if text:
                    nodes.append(_Text("".join(text)))
                    text = []
                self.pos += 2
                nodes.append(self.reference())
            elif self.peek() == "$" and self.peek(1) == "$":
                text.append("$")
                self.pos += 2
            else:
                text.append(self.peek())
                self.pos += 1
        if text:
            nodes.append(_Text("".join(text)))
        return nodes

    def reference(self) -> _Reference:
        """The part of ``${...}`` after the opening ``${``."""
        if self.peek() == "#":
            self.pos += 1
            name = self.identifier()
            if not name:
                raise self.fail("bad substitution")
            self.close()
            return _Reference(name, "#")
        name = self.identifier()
        if not name:
            raise self.fail("unable to parse variable name")
        following = self.peek()
        if following == ":" and self.peek(1) in ("=", "-", "?", "+"):
            return self.default(name, self.take(2))
        if following == ":":
            return self.substring(name)
        if following == "=":
            return self.default(name, self.take(1))
        if following in (",", "^"):
            return self.with_close(name, self.take_while(lambda c: c in ",^", limit=2))
        if following == "/":
            return self.replace(name)
        if following in ("#", "%"):
            operator = self.take_while(lambda c: c == following, limit=2)
            argument = self.argument(lambda c: c != "}")
            self.close()
            return _Reference(name, operator, (argument,))
        if following != "}":
            raise self.fail("missing closing brace")
        self.pos += 1
        return _Reference(name, "")

    def identifier(self) -> str:
        return self.take_while(_identifier_char)

    def take(self, count: int) -> str:
        taken = self.text[self.pos : self.pos + count]
        self.pos += count
        return taken

    def take_while(self, accept: Callable[[str], bool], limit: int | None = None) -> str:
        start = self.pos
        while self.pos < len(self.text) and accept(self.text[self.pos]):
            if limit is not None and self.pos - start == limit:
                break
            self.pos += 1
        return self.text[start : self.pos]

    def close(self) -> None:
        if self.peek() != "}":
            raise self.fail("bad substitution")
        self.pos += 1

    def with_close(self, name: str, operator: str) -> _Reference:
        self.close()
        return _Reference(name, operator)

    def default(self, name: str, operator: str) -> _Reference:
        args: list[_Node] = []
        while self.peek() != "}":
            args.append(self.argument(lambda c: c != "}"))
        self.pos += 1
        return _Reference(name, operator, tuple(args))

    def substring(self, name: str) -> _Reference:
        self.pos += 1
        args = [self.argument(lambda c: c not in ":}")]
        if self.peek() == ":":
            self.take_while(lambda c: c == ":")
            args.append(self.argument(lambda c: c != "}"))
            self.close()
        elif self.peek() == "}":
            self.pos += 1
        else:
            raise self.fail("bad substitution")
        return _Reference(name, ":", tuple(args))

    def replace(self, name: str) -> _Reference:
        self.pos += 1
        operator = "/" + (self.take(1) if self.peek() in ("/", "#", "%") else "")
        pattern: _Node = (
            _Text("") if self.peek() == "/" else self.argument(lambda c: c != "/", escapes=True)
        )
        if self.peek() != "/":
            raise self.fail("bad substitution")
        self.take_while(lambda c: c == "/")
        if self.peek() == "}":
            self.pos += 1
            return _Reference(name, operator, (pattern,))
        replacement = self.argument(lambda c: c != "}", escapes=True)
        self.close()
        return _Reference(name, operator, (pattern, replacement))

    def argument(self, accept: Callable[[str], bool], *, escapes: bool = False) -> _Node:
        """One argument: a nested reference, or text up to the next reference or stop."""
        if self.at_reference():
            self.pos += 2
            return self.reference()
        text: list[str] = []
        while self.pos < len(self.text) and not self.at_reference():
            char, following = self.peek(), self.peek(1)
            if escapes and (
                (char == "$" and following == "$") or (char == "\\" and following in ("/", "\\"))
            ):
                text.append(following)
                self.pos += 2
                continue
            if not accept(char):
                break
            text.append(char)
            self.pos += 1
        if not text:
            raise self.fail("unable to parse substitution within function")
        return _Text("".join(text))


def _identifier_char(char: str) -> bool:
    # Go's unicode.IsLetter / unicode.IsDigit (category Nd) or an underscore.
    return char.isalpha() or unicodedata.category(char) == "Nd" or char == "_"


def _evaluate(node: _Node, variables: Mapping[str, str], strict: bool) -> str:
    if isinstance(node, _Text):
        return node.value
    args = [_evaluate(arg, variables, strict) for arg in node.args]
    value = variables.get(node.name)
    if value is None and strict and node.operator not in _DEFAULT_OPERATORS:
        raise SubstitutionError(f"variable {node.name!r} is not set and has no default")
    return _apply(node.operator, value or "", args)


def _apply(operator: str, value: str, args: list[str]) -> str:
    if operator == ",":
        return value[:1].lower() + value[1:]
    if operator == ",,":
        return value.lower()
    if operator == "^":
        return value[:1].upper() + value[1:]
    if operator == "^^":
        return value.upper()
    if operator == "#":
        return _trim_prefix(value, args[0], longest=False) if args else str(len(value.encode()))
    if operator in ("##", "%", "%%"):
        return _trim(operator, value, args[0])
    if operator == ":":
        return _substring(value, args)
    if operator in ("/#", "/%"):
        return _replace_affix(operator, value, args)
    if operator in ("/", "//"):
        replacement = args[1] if len(args) > 1 else ""
        return value.replace(args[0], replacement, 1 if operator == "/" else -1)
    # ${var}, and every default form: the value unless empty, else the arguments joined.
    return value if value or not args else "".join(args)


def _replace_affix(operator: str, value: str, args: list[str]) -> str:
    if len(args) != 2:
        return value
    pattern, replacement = args
    if operator == "/#":
        return replacement + value[len(pattern) :] if value.startswith(pattern) else value
    return value[: len(value) - len(pattern)] + replacement if value.endswith(pattern) else value


def _trim(operator: str, value: str, pattern: str) -> str:
    if operator == "##":
        return _trim_prefix(value, pattern, longest=True)
    # Suffixes are trimmed as prefixes of the reversed text, with the pattern reversed.
    return _trim_prefix(value[::-1], pattern[::-1], longest=operator == "%%")[::-1]


def _trim_prefix(value: str, pattern: str, *, longest: bool) -> str:
    matcher = _glob(pattern)
    if matcher is None:
        return value
    lengths = range(len(value), 0, -1) if longest else range(1, len(value) + 1)
    for length in lengths:
        if matcher.fullmatch(value[:length]):
            return value[length:]
    return value


def _glob(pattern: str) -> re.Pattern[str] | None:
    """Go's path.Match syntax as envsubst uses it (``*`` also matches ``/``); None if malformed."""
    out: list[str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        index += 1
        if char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        elif char == "\\":
            if index == len(pattern):
                return None
            out.append(re.escape(pattern[index]))
            index += 1
        elif char == "[":
            parsed = _glob_class(pattern, index)
            if parsed is None:
                return None
            klass, index = parsed
            out.append(klass)
        else:
            out.append(re.escape(char))
    return re.compile("".join(out), re.DOTALL)


def _glob_class(pattern: str, index: int) -> tuple[str, int] | None:
    negate = index < len(pattern) and pattern[index] == "^"
    if negate:
        index += 1
    ranges: list[str] = []
    first = True
    while True:
        if not first and index < len(pattern) and pattern[index] == "]":
            index += 1
            break
        first = False
        low = _glob_class_char(pattern, index)
        if low is None:
            return None
        low_char, index = low
        high_char = low_char
        if index < len(pattern) and pattern[index] == "-":
            high = _glob_class_char(pattern, index + 1)
            if high is None:
                return None
            high_char, index = high
        if low_char <= high_char:
            ranges.append(f"{re.escape(low_char)}-{re.escape(high_char)}")
    if not ranges:
        return ("." if negate else "(?!)"), index
    return f"[{'^' if negate else ''}{''.join(ranges)}]", index


def _glob_class_char(pattern: str, index: int) -> tuple[str, int] | None:
    if index >= len(pattern) or pattern[index] in "-]":
        return None
    if pattern[index] == "\\":
        index += 1
        if index >= len(pattern):
            return None
    return pattern[index], index + 1


_GO_INT = re.compile(r"[+-]?[0-9]+")


def _substring(value: str, args: list[str]) -> str:
    # Offsets count bytes, as Go's string slicing does.
    data = value.encode()
    if not _GO_INT.fullmatch(args[0]):
        return value
    start = int(args[0])
    if start < 0:
        start = max(len(data) + start, 0)
    if len(args) == 1:
        return data[start:].decode(errors="replace")
    if not _GO_INT.fullmatch(args[1]):
        return value
    length = int(args[1])
    # A negative length counts back from the end, as in bash.
    end = len(data) + length if length < 0 else start + length
    return data[start:end].decode(errors="replace") if end >= start else ""
