"""A safe subset of Go's text/template with sprig's common functions: External Secrets'
template engine v2 for ``spec.target.template`` and key rewrites.

What a template may hold:

- text, and actions ``{{ pipeline }}``; ``{{-`` and ``-}}`` trim the whitespace before and
  after an action; ``{{/* comments */}}``;
- a pipeline is commands joined by ``|``, each passing its value as the last argument of
  the next: ``{{ .password | b64enc }}``, ``{{ index . "api-key" | upper }}``;
- operands: ``.`` (all the values), ``.key`` (one value), string literals (``"..."`` with
  Go's escapes, or raw `` `...` ``) and integers;
- functions: ``b64enc``, ``b64dec``, ``upper``, ``lower``, ``trim``, ``trimPrefix``,
  ``trimSuffix``, ``replace`` (old new s), ``quote``, ``squote``, ``toJson``,
  ``toString``, ``default`` (fallback value), ``index`` (map key), ``sha256sum``,
  ``indent`` and ``nindent`` (n s), with sprig's argument order.

Control structures (``if``, ``range``, ``with``, ``define`` ...), variables and parentheses
are refused with an error that says so. A key that is not among the values is an error, as
External Secrets runs its templates with ``missingkey=error``. Nothing here can reach the
file system, the network or the environment, and error messages name keys, functions and
template text, never a value.
"""

from __future__ import annotations

import ast
import base64
import binascii
import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gitmoor.errors import Location
from gitmoor.secrets.errors import InvalidSpecError
from gitmoor.secrets.vault import go_json

Value = str | int | bool | Mapping[str, str]

_KEYWORDS = {"if", "else", "end", "range", "with", "define", "template", "block", "break",
             "continue", "nil", "and", "or", "not"}  # fmt: skip
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:\\.|[^"\\])*")
      | (?P<raw>`[^`]*`)
      | (?P<number>-?\d+)
      | (?P<field>\.(?:[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)?)
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<pipe>\|)
      | (?P<other>\S)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str


def render(template: str, values: Mapping[str, str], *, where: str) -> str:
    """``template`` executed over ``values``; ``where`` names it in errors (a field)."""
    out: list[str] = []
    position = 0
    trim_next = False
    while True:
        start = template.find("{{", position)
        text = template[position:] if start < 0 else template[position:start]
        if trim_next:
            text = text.lstrip()
        if start < 0:
            out.append(text)
            return "".join(out)
        end = _action_end(template, start + 2, where)
        action = template[start + 2 : end]
        if action.startswith("-") and (len(action) == 1 or action[1].isspace()):
            text = text.rstrip()
            action = action[1:]
        trim_next = len(action) >= 2 and action.endswith("-") and action[-2].isspace()
        if trim_next:
            action = action[:-1]
        out.append(text)
        body = action.strip()
        if not (body.startswith("/*") and body.endswith("*/")):
            out.append(_print(_pipeline(body, values, where)))
        position = end + 2


def _action_end(template: str, index: int, where: str) -> int:
    """Where the action opened before ``index`` closes, skipping ``}}`` inside literals."""
    quote: str | None = None
    while index < len(template):
        char = template[index]
        if quote is not None:
            if char == "\\" and quote == '"':
                index += 1
            elif char == quote:
                quote = None
        elif char in '"`':
            quote = char
        elif template.startswith("}}", index):
            return index
        index += 1
    raise _error(where, "an action opened with '{{' is never closed")


def _pipeline(body: str, values: Mapping[str, str], where: str) -> Value:
    if not body:
        raise _error(where, "empty action '{{ }}'")
    commands: list[list[_Token]] = [[]]
    for token in _tokens(body, where):
        if token.kind == "pipe":
            commands.append([])
        else:
            commands[-1].append(token)
    if any(not command for command in commands):
        raise _error(where, f"a command is missing around '|' in '{{{{ {body} }}}}'")
    result: Value | None = None
    for index, command in enumerate(commands):
        head, *rest = command
        if head.kind == "name":
            args = [_operand(token, values, where) for token in rest]
            if result is not None:
                args.append(result)
            result = _call(head.text, args, where)
        elif index == 0 and not rest:
            result = _operand(head, values, where)
        else:
            raise _error(where, f"'{head.text}' is not a function, in '{{{{ {body} }}}}'")
    assert result is not None
    return result


def _tokens(body: str, where: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(body):
        match = _TOKEN.match(body, position)
        if match is None:
            break
        position = match.end()
        kind = match.lastgroup
        if kind is None:
            break
        text = match.group(kind)
        if kind == "other":
            what = {"$": "variables", "(": "parentheses", ")": "parentheses"}.get(text)
            raise _error(where, f"{what} are not supported" if what else f"unexpected '{text}'")
        if kind == "name" and text in _KEYWORDS:
            raise _error(where, f"'{text}' is not supported (no control structures)")
        tokens.append(_Token(kind, text))
    return tokens


def _operand(token: _Token, values: Mapping[str, str], where: str) -> Value:
    if token.kind == "string":
        try:
            return str(ast.literal_eval(token.text))
        except (SyntaxError, ValueError):
            raise _error(where, f"invalid string literal {token.text}") from None
    if token.kind == "raw":
        return token.text[1:-1]
    if token.kind == "number":
        return int(token.text)
    if token.kind == "field":
        if token.text == ".":
            return values
        first, *deeper = token.text[1:].split(".")
        if first not in values:
            raise _error(where, f"key '{first}' is not among the fetched values")
        if deeper:
            raise _error(where, f"'.{first}' is a string, it has no field '{deeper[0]}'")
        return values[first]
    if token.kind == "name":
        return _call(token.text, [], where)
    raise _error(where, f"unexpected '{token.text}'")


def _print(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{v}" for k, v in sorted(value.items())) + "]"
    return str(value)


# --- functions -----------------------------------------------------------------------------


def _text(value: Value) -> str:
    return value if isinstance(value, str) else _print(value)


def _b64dec(value: Value) -> str:
    try:
        raw = base64.b64decode(_text(value), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the value is not valid base64") from None
    return raw.decode("utf-8", "surrogateescape")


def _index(mapping: Value, key: Value) -> Value:
    if not isinstance(mapping, Mapping):
        raise ValueError("its first argument must be the values ('.')")
    if key not in mapping:
        raise ValueError(f"key '{key}' is not among the fetched values")
    return mapping[str(key)]


def _indent(width: Value, value: Value) -> str:
    if not isinstance(width, int):
        raise ValueError("its first argument must be a number")
    pad = " " * width
    return pad + _text(value).replace("\n", "\n" + pad)


def _encoded(value: Value) -> bytes:
    return _text(value).encode("utf-8", "surrogateescape")


_FUNCTIONS: dict[str, tuple[int, Callable[..., Value]]] = {
    "b64enc": (1, lambda s: base64.b64encode(_encoded(s)).decode()),
    "b64dec": (1, _b64dec),
    "upper": (1, lambda s: _text(s).upper()),
    "lower": (1, lambda s: _text(s).lower()),
    "trim": (1, lambda s: _text(s).strip()),
    "trimPrefix": (2, lambda prefix, s: _text(s).removeprefix(_text(prefix))),
    "trimSuffix": (2, lambda suffix, s: _text(s).removesuffix(_text(suffix))),
    "replace": (3, lambda old, new, s: _text(s).replace(_text(old), _text(new))),
    "quote": (1, lambda s: go_json(_text(s))),
    "squote": (1, lambda s: f"'{_text(s)}'"),
    "toJson": (1, lambda v: go_json(dict(v) if isinstance(v, Mapping) else v)),
    "toString": (1, _text),
    "default": (2, lambda fallback, v: v or fallback),
    "index": (2, _index),
    "sha256sum": (1, lambda s: hashlib.sha256(_encoded(s)).hexdigest()),
    "indent": (2, _indent),
    "nindent": (2, lambda width, s: "\n" + _indent(width, s)),
}


def _call(name: str, args: list[Value], where: str) -> Value:
    found = _FUNCTIONS.get(name)
    if found is None:
        raise _error(where, f"function '{name}' is not supported")
    arity, function = found
    if len(args) != arity:
        raise _error(where, f"function '{name}' takes {arity} argument"
                            f"{'s' if arity != 1 else ''}, got {len(args)}")  # fmt: skip
    try:
        result: Any = function(*args)
    except ValueError as exc:
        raise _error(where, f"{name}: {exc}") from None
    return result  # type: ignore[no-any-return]


def _error(where: str, message: str) -> InvalidSpecError:
    return InvalidSpecError(f"template: {message}", Location(field=where))
