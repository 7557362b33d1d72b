"""Semantic versions and Masterminds-style ranges, as Flux and Helm read them.

``SemverRange`` reads the constraint syntax of Masterminds/semver v3, which both
``GitRepository.spec.ref.semver`` and chart versions (``HelmRelease.spec.chart.spec.version``,
``OCIRepository.spec.ref.semver``) are written in. ``select_version`` picks the newest of a
list of chart versions or OCI tags that a constraint allows.

Two readings of a version string are kept apart because they accept different strings:
``parse_version`` reads Git tags leniently, completing a missing minor or patch number with
zero (``v1.2`` is 1.2.0), so release tags cut without a patch number count for a
``spec.ref.semver`` range; ``parse_chart_version`` reads chart versions and OCI tags
strictly, as SemVer 2.0 with an optional ``v`` (``1.2`` is no version), as fluxcd/pkg's
``version.ParseVersion`` does, since Helm only packages charts with strict SemVer versions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from semver import Version

from gitmoor.errors import InputError

__all__ = [
    "SemverRange",
    "newest_versions",
    "parse_chart_version",
    "parse_version",
    "select_version",
]

_NUMBER = r"(?:\d+|[xX*])"
_IDENTIFIERS = r"[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*"
_RANGE_VERSION = (
    rf"v?(?P<major>{_NUMBER})(?:\.(?P<minor>{_NUMBER}))?(?:\.(?P<patch>{_NUMBER}))?"
    rf"(?:-(?P<pre>{_IDENTIFIERS}))?(?:\+(?P<build>{_IDENTIFIERS}))?"
)
_BOUND = rf"(?P<op>!=|>=|=>|<=|=<|~>|=|>|<|~|\^)?\s*{_RANGE_VERSION}"
_BOUND_RE = re.compile(_BOUND)


def _unnamed(pattern: str) -> str:
    return re.sub(r"\(\?P<\w+>", "(?:", pattern)


_AND_GROUP = re.compile(rf"^\s*{_unnamed(_BOUND)}\s*(?:(?:\s+|,\s*){_unnamed(_BOUND)}\s*)*$")
_HYPHEN_RANGE = re.compile(
    rf"\s*({_unnamed(_RANGE_VERSION)})\s+-\s+({_unnamed(_RANGE_VERSION)})\s*"
)
_TAG_VERSION = re.compile(
    rf"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-({_IDENTIFIERS}))?(?:\+({_IDENTIFIERS}))?$"
)


def parse_version(tag: str) -> Version | None:
    """The version a Git tag names (``v1.2.3``, ``1.2``), or None; see the module doc."""
    match = _TAG_VERSION.match(tag)
    if not match:
        return None
    major, minor, patch, pre, build = match.groups()
    text = f"{int(major)}.{int(minor or 0)}.{int(patch or 0)}"
    text += f"-{pre}" if pre else ""
    text += f"+{build}" if build else ""
    try:
        return Version.parse(text)
    except ValueError:
        return None


def parse_chart_version(text: str) -> Version | None:
    """A chart version or OCI tag read as Flux reads it: strict SemVer 2.0, ``v`` allowed."""
    try:
        return Version.parse(text.removeprefix("v"))
    except ValueError:
        return None


def select_version(available: Iterable[str], constraint: str | None) -> str | None:
    """The newest of ``available`` that ``constraint`` allows, as written in ``available``.

    An empty constraint means the newest stable version. A version equal to the
    constraint's text wins outright, as in Helm's index lookup. Prereleases only match a
    constraint that names a prerelease; strings that are not versions are passed over.
    Of versions differing only in build metadata the one listed first wins (indexes list
    the newest first). A constraint that cannot be read raises InputError.
    """
    versions = list(available)
    wanted = (constraint or "").strip()
    if wanted and wanted in versions:
        return wanted
    try:
        allowed = SemverRange.parse(wanted or "*")
    except ValueError as err:
        raise InputError(f"version constraint {wanted!r} is not valid: {err}") from None
    best: tuple[Version, str] | None = None
    for text in versions:
        version = parse_chart_version(text)
        if version is None or not allowed.allows(version):
            continue
        if best is None or version.compare(best[0]) > 0:
            best = (version, text)
    return None if best is None else best[1]


def newest_versions(versions: Iterable[str], limit: int) -> list[str]:
    """The ``limit`` newest chart versions of ``versions``, newest first, for messages."""
    parsed = [(v, text) for text in versions if (v := parse_chart_version(text)) is not None]
    parsed.sort(key=lambda pair: pair[0], reverse=True)
    return [text for _, text in parsed[:limit]]


# --- ranges ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Bound:
    op: str
    version: Version
    wild: bool
    """Some part was left out or given as x, X or *."""
    minor_wild: bool
    patch_wild: bool

    def allows(self, v: Version) -> bool:
        c = self.version
        # A prerelease satisfies only a bound that itself names a prerelease.
        if v.prerelease and not c.prerelease:
            return False
        order = v.compare(c)
        if self.op in ("", "="):
            return self._tilde(v) if self.wild else order == 0
        if self.op == "!=":
            return self._not_equal(v)
        if self.op == ">":
            if not self.wild or v.major != c.major:
                return order > 0
            if self.minor_wild:
                return False
            return v.minor > c.minor if self.patch_wild else order > 0
        if self.op == "<":
            return order < 0
        if self.op in (">=", "=>"):
            return order >= 0
        if self.op in ("<=", "=<"):
            if not self.wild:
                return order <= 0
            if v.major != c.major:
                return v.major < c.major
            return self.minor_wild or v.minor <= c.minor
        if self.op in ("~", "~>"):
            return self._tilde(v)
        return self._caret(v)

    def _tilde(self, v: Version) -> bool:
        c = self.version
        if v.compare(c) < 0:
            return False
        if (c.major, c.minor, c.patch) == (0, 0, 0) and not self.minor_wild and not self.patch_wild:
            return True
        return v.major == c.major and (self.minor_wild or v.minor == c.minor)

    def _caret(self, v: Version) -> bool:
        c = self.version
        if v.compare(c) < 0:
            return False
        if c.major > 0 or self.minor_wild:
            return v.major == c.major
        if v.major > 0:
            return False
        if c.minor > 0 or self.patch_wild:
            return v.minor == c.minor
        return v.minor == 0 and v.patch == c.patch

    def _not_equal(self, v: Version) -> bool:
        c = self.version
        if self.wild:
            if v.major != c.major:
                return True
            if self.minor_wild:
                return False
            if v.minor != c.minor:
                return True
            if self.patch_wild:
                return (v.prerelease or "") != (c.prerelease or "")
        return v.compare(c) != 0


class SemverRange:
    """A version range in the syntax Flux and Helm use (Masterminds/semver v3).

    ``||`` separates alternatives; within one, bounds separated by spaces or commas must
    all hold. Bounds: ``=``, ``!=``, ``>``, ``<``, ``>=``, ``<=``, ``~`` (patch updates:
    ``~1.2.3`` is ``>=1.2.3 <1.3.0``), ``^`` (no major change: ``^1.2`` is
    ``>=1.2.0 <2.0.0``), wildcards ``1.2.x``, ``1.*``, ``*``, and hyphen ranges
    ``1.2 - 1.4.5``. A prerelease version only matches a bound naming a prerelease.
    """

    def __init__(self, alternatives: list[list[_Bound]]) -> None:
        self._alternatives = alternatives

    @classmethod
    def parse(cls, text: str) -> SemverRange:
        """Read a range; ValueError says what is wrong with it."""
        alternatives: list[list[_Bound]] = []
        for part in text.split("||"):
            part = _HYPHEN_RANGE.sub(lambda m: f" >={m[1]}, <={m[2]} ", part)
            if not _AND_GROUP.match(part):
                raise ValueError(f"{part.strip()!r} is not a version constraint")
            alternatives.append([_bound(m) for m in _BOUND_RE.finditer(part)])
        return cls(alternatives)

    def allows(self, version: Version) -> bool:
        return any(all(b.allows(version) for b in group) for group in self._alternatives)


def _bound(match: re.Match[str]) -> _Bound:
    major, minor, patch = match["major"], match["minor"], match["patch"]

    def wild(part: str | None) -> bool:
        return part is None or part in ("x", "X", "*")

    if wild(major):
        numbers, minor_wild, patch_wild = "0.0.0", False, False
    elif wild(minor):
        numbers, minor_wild, patch_wild = f"{int(major)}.0.0", True, False
    elif wild(patch):
        numbers, minor_wild, patch_wild = f"{int(major)}.{int(minor)}.0", False, True
    else:
        numbers, minor_wild, patch_wild = f"{int(major)}.{int(minor)}.{int(patch)}", False, False
    text = numbers + (f"-{match['pre']}" if match["pre"] else "")
    text += f"+{match['build']}" if match["build"] else ""
    try:
        version = Version.parse(text)
    except ValueError as err:
        raise ValueError(f"{match[0]!r}: {err}") from None
    return _Bound(
        op=match["op"] or "",
        version=version,
        wild=wild(major) or wild(minor) or wild(patch),
        minor_wild=minor_wild,
        patch_wild=patch_wild,
    )
