"""Every lower bound the distributions declare is the version the `oldest` tox environments install.

Those environments install through ``constraints/oldest.txt``; a bound raised in a
pyproject.toml without the constraints file (or the other way round) would leave one
end of a declared range untested.
"""

from __future__ import annotations

import configparser
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
OWN = {"qts-data"}  # our own distributions are installed from the tree


def declared() -> dict[str, tuple[Version, str]]:
    """name -> (lower bound, where it is declared), over every pyproject.toml and tox.ini."""
    found: dict[str, tuple[Version, str]] = {}

    def add(text: str, where: str) -> None:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        if name in OWN:
            return
        lows = [Version(s.version) for s in requirement.specifier if s.operator in (">=", "==")]
        assert lows, f"{where}: {text!r} declares no lower bound"
        found[name] = (max(lows), where)
        for extra in requirement.extras:  # redis[hiredis]: the extra's own bound is redis-py's
            found.setdefault(canonicalize_name(extra), (Version("0"), where))

    for path in [ROOT / "core" / "pyproject.toml", *sorted(ROOT.glob("plugins/*/pyproject.toml"))]:
        project = tomllib.loads(path.read_text())["project"]
        where = str(path.relative_to(ROOT))
        for text in project.get("dependencies", []):
            add(text, where)
        for extra_name, extra in project.get("optional-dependencies", {}).items():
            if extra_name == "typing":  # stubs for the lint environment, which takes the newest
                continue
            for text in extra:
                if not text.startswith("qts-data"):
                    add(text, where)
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(ROOT / "tox.ini")
    for line in tox["testenv"]["deps"].split("\n"):
        if line.strip():
            add(line.strip(), "tox.ini")
    return found


def pinned() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in (ROOT / "constraints" / "oldest.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = Version(version)
    return pins


def test_the_oldest_constraints_pin_every_declared_lower_bound() -> None:
    bounds, pins = declared(), pinned()
    for name, (low, where) in bounds.items():
        assert name in pins, f"{name} ({where}) is not pinned in constraints/oldest.txt"
        if low > Version("0"):
            assert pins[name] == low, (
                f"{name}: {where} declares >={low}, oldest.txt pins {pins[name]}"
            )
    extra = sorted(set(pins) - set(bounds))
    assert not extra, f"constraints/oldest.txt pins what nothing declares: {extra}"
