"""The scenario files of a folder, and what a picker shows of each before loading it: the
scenario's name and the first paragraph of its leading comment (else its ``description``).
A file that cannot be read or parsed is still listed: loading it tells what is wrong."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

SUFFIX = ".btar.toml"


def scenario_files(folder: Path) -> list[Path]:
    """The scenario files in ``folder``, sorted; none when it cannot be listed."""
    try:
        return sorted(p for p in folder.glob(f"*{SUFFIX}") if p.is_file())
    except OSError:
        return []


@dataclass(frozen=True)
class ScenarioInfo:
    path: Path
    #: the scenario's ``name`` ("" when it has none or cannot be read)
    name: str
    #: the first paragraph of its leading comment, else its ``description``
    about: str


def leading_comment(text: str) -> str:
    """The first paragraph of the comment a file starts with, on one line: it ends at an
    empty comment line, an indented one (a derivation) or the first line of TOML."""
    lines = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        body = line[1:]
        if not body.strip() or body.startswith("   "):
            break
        lines.append(body.strip())
    return " ".join(lines)


def scenario_info(path: Path) -> ScenarioInfo:
    """What the picker shows of a file; a file that cannot be read or parsed still shows
    (replaying it tells what is wrong)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        return ScenarioInfo(path, "", f"cannot be read: {error}")
    about = leading_comment(text)
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return ScenarioInfo(path, "", about or "not valid TOML")
    name = document.get("name")
    description = document.get("description")
    if not about and isinstance(description, str):
        about = description.strip()
    return ScenarioInfo(path, name.strip() if isinstance(name, str) else "", about)
