"""Field sets as server-side apply records them, and their FieldsV1 encoding.

A :class:`FieldSet` is a trie of :class:`PathElement` s, as in
sigs.k8s.io/structured-merge-diff: each node knows which of its children are *members*
(owned themselves) and which have owned descendants. FieldsV1 is its JSON form:
``{"f:spec": {"f:replicas": {}}, "k:{\\"name\\":\\"web\\"}": {".": {}, "f:image": {}}}``,
keys in the library's order, ``"."`` marking a node that is a member and has children.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

FIELD, KEY, VALUE, INDEX = "f", "k", "v", "i"
_KIND_ORDER = {FIELD: 0, KEY: 1, VALUE: 2, INDEX: 3}
_PREFIXES = frozenset(f"{kind}:" for kind in _KIND_ORDER)


def canonical(value: Any) -> Any:
    """``value`` with integral floats as ints, so that ``1.0`` and ``1`` name one item."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    if isinstance(value, list):
        return [canonical(item) for item in value]
    if isinstance(value, dict):
        return {key: canonical(item) for key, item in value.items()}
    return value


def to_json(value: Any) -> str:
    """Compact JSON with sorted object keys, as Go's deterministic encoder writes it."""
    return json.dumps(canonical(value), ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def _type_rank(value: Any) -> int:
    # structured-merge-diff orders values of different types: numbers, strings,
    # booleans, lists, maps, null.
    if isinstance(value, bool):
        return 2
    if isinstance(value, int | float):
        return 0
    if isinstance(value, str):
        return 1
    if isinstance(value, list):
        return 3
    if isinstance(value, dict):
        return 4
    return 5


def _value_order(value: Any) -> tuple[Any, ...]:
    rank = _type_rank(value)
    if rank == 3:
        return (rank, tuple(_value_order(item) for item in value))
    if rank == 4:
        return (rank, tuple((key, _value_order(value[key])) for key in sorted(value)))
    if rank == 5:
        return (rank,)
    return (rank, value)


def _go_string(value: Any) -> str:
    """A value as structured-merge-diff prints it in paths: strings quoted."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return to_json(value)


@dataclass(frozen=True)
class PathElement:
    """One step of a field path: ``f:`` a field, ``k:`` a list-map item by its keys,
    ``v:`` a set item by its value, ``i:`` a list position."""

    kind: str
    text: str  # what follows "<kind>:" in the FieldsV1 key; canonical, so equality is exact

    @classmethod
    def field(cls, name: str) -> PathElement:
        return cls(FIELD, name)

    @classmethod
    def key(cls, fields: Mapping[str, Any]) -> PathElement:
        try:
            # Types are part of the cache key: 1 and True hash alike.
            return _scalar_key(tuple((name, type(v), v) for name, v in fields.items()))
        except TypeError:  # a key that is a list or a map: not hashable, not cached
            return cls(KEY, to_json(dict(fields)))

    @classmethod
    def value(cls, value: Any) -> PathElement:
        return cls(VALUE, to_json(value))

    @classmethod
    def index(cls, position: int) -> PathElement:
        return cls(INDEX, str(position))

    @staticmethod
    def parse(text: str) -> PathElement:
        """A FieldsV1 key such as ``f:spec`` or ``k:{"name":"web"}``; ValueError if malformed."""
        return _parse(text)

    def serialize(self) -> str:
        return f"{self.kind}:{self.text}"

    @cached_property
    def decoded(self) -> Any:
        """The field name, the key fields (a dict), the item value or the index."""
        if self.kind == FIELD:
            return self.text
        if self.kind == INDEX:
            return int(self.text)
        return json.loads(self.text)

    @cached_property
    def _order(self) -> tuple[Any, ...]:
        if self.kind == FIELD:
            detail: Any = self.text
        elif self.kind == KEY:
            keys = self.decoded
            detail = tuple((name, _value_order(keys[name])) for name in sorted(keys))
        elif self.kind == VALUE:
            detail = _value_order(self.decoded)
        else:
            detail = int(self.text)
        return (_KIND_ORDER[self.kind], detail)

    def __lt__(self, other: PathElement) -> bool:
        return self._order < other._order

    def __str__(self) -> str:
        if self.kind == FIELD:
            return f".{self.text}"
        if self.kind == KEY:
            keys = self.decoded
            return "[" + ",".join(f"{name}={_go_string(keys[name])}" for name in sorted(keys)) + "]"
        if self.kind == VALUE:
            return f"[={_go_string(self.decoded)}]"
        return f"[{self.text}]"


@lru_cache(maxsize=8192)
def _scalar_key(fields: tuple[tuple[str, type, Any], ...]) -> PathElement:
    return PathElement(KEY, to_json({name: value for name, _, value in fields}))


@lru_cache(maxsize=8192)
def _parse(text: str) -> PathElement:
    kind, sep, rest = text.partition(":")
    if not sep or kind not in _KIND_ORDER:
        raise ValueError(f"not a field path element: {text!r}")
    if kind == FIELD:
        return PathElement.field(rest)
    if kind == INDEX:
        return PathElement.index(int(rest))
    decoded = json.loads(rest)
    if kind == KEY:
        if not isinstance(decoded, dict):
            raise ValueError(f"key of a list item is not an object: {text!r}")
        return PathElement.key(decoded)
    return PathElement.value(decoded)


Path = tuple[PathElement, ...]


def path_string(path: Sequence[PathElement]) -> str:
    """A path as the API server prints it in conflicts: ``.spec.containers[name="web"].image``."""
    return "".join(str(element) for element in path)


class FieldSet:
    """A set of field paths, stored as a trie."""

    __slots__ = ("children", "members")

    def __init__(
        self,
        members: set[PathElement] | None = None,
        children: dict[PathElement, FieldSet] | None = None,
    ) -> None:
        self.members: set[PathElement] = members if members is not None else set()
        self.children: dict[PathElement, FieldSet] = children if children is not None else {}

    @classmethod
    def of(cls, *paths: Sequence[PathElement]) -> FieldSet:
        result = cls()
        for path in paths:
            result.insert(path)
        return result

    def insert(self, path: Sequence[PathElement]) -> None:
        node = self
        for element in path[:-1]:
            node = node.descend(element)
        if path:
            node.members.add(path[-1])

    def descend(self, element: PathElement) -> FieldSet:
        """The set below ``element``, created empty if there is none yet."""
        below = self.children.get(element)
        if below is None:
            below = self.children[element] = FieldSet()
        return below

    def has(self, path: Sequence[PathElement]) -> bool:
        node: FieldSet | None = self
        for element in path[:-1]:
            node = node.children.get(element) if node is not None else None
        return bool(path) and node is not None and path[-1] in node.members

    def empty(self) -> bool:
        return not self.members and all(child.empty() for child in self.children.values())

    def copy(self) -> FieldSet:
        return FieldSet(set(self.members), {pe: c.copy() for pe, c in self.children.items()})

    def union(self, other: FieldSet) -> FieldSet:
        children = {pe: c.copy() for pe, c in self.children.items()}
        for pe, theirs in other.children.items():
            children[pe] = children[pe].union(theirs) if pe in children else theirs.copy()
        return FieldSet(self.members | other.members, children)

    def intersection(self, other: FieldSet) -> FieldSet:
        children = {}
        for pe, mine in self.children.items():
            if pe in other.children:
                both = mine.intersection(other.children[pe])
                if not both.empty():
                    children[pe] = both
        return FieldSet(self.members & other.members, children)

    def difference(self, other: FieldSet) -> FieldSet:
        """Paths of ``self`` not in ``other``; a member of ``other`` does not take away
        the paths below it."""
        children = {}
        for pe, mine in self.children.items():
            rest = mine.difference(other.children[pe]) if pe in other.children else mine.copy()
            if not rest.empty():
                children[pe] = rest
        return FieldSet(self.members - other.members, children)

    def recursive_difference(self, other: FieldSet) -> FieldSet:
        """Paths of ``self`` neither in ``other`` nor below one of its members."""
        children = {}
        for pe, mine in self.children.items():
            if pe in other.members:
                continue
            rest = (
                mine.recursive_difference(other.children[pe])
                if pe in other.children
                else mine.copy()
            )
            if not rest.empty():
                children[pe] = rest
        return FieldSet(self.members - other.members, children)

    def paths(self, prefix: Path = ()) -> Iterator[Path]:
        """Every member path: at each level the members first, then the children's, in
        the library's element order (the order conflicts are reported in)."""
        for pe in sorted(self.members):
            yield (*prefix, pe)
        for pe in sorted(self.children):
            yield from self.children[pe].paths((*prefix, pe))

    def to_fields_v1(self) -> dict[str, Any]:
        """The FieldsV1 object, keys in the order the API server writes them."""
        out: dict[str, Any] = {}
        below = {pe: c for pe, c in self.children.items() if not c.empty()}
        for pe in sorted(self.members | below.keys()):
            if pe in below:
                inner = below[pe].to_fields_v1()
                if pe in self.members:
                    inner["."] = {}
                out[pe.serialize()] = inner
            else:
                out[pe.serialize()] = {}
        return out

    @classmethod
    def from_fields_v1(cls, fields: Mapping[str, Any]) -> FieldSet:
        """Read a FieldsV1 object; ValueError if it is not one. Element kinds this
        version does not know are skipped, as the API server does."""
        result = cls()
        for text, inner in fields.items():
            if text == ".":
                continue
            if not isinstance(inner, Mapping):
                raise ValueError(f"value of {text!r} is not an object")
            if text[:2] not in _PREFIXES:
                continue
            element = PathElement.parse(text)
            below = cls.from_fields_v1(inner)
            if "." in inner or below.empty():
                result.members.add(element)
            if not below.empty():
                result.children[element] = below
        return result

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FieldSet):
            return NotImplemented
        return self.to_fields_v1() == other.to_fields_v1()

    def __repr__(self) -> str:
        return f"FieldSet({[path_string(p) for p in self.paths()]})"
