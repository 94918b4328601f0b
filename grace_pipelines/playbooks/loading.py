"""Finding and reading the playbook files: the shipped ones in the repository's top-level
`playbooks/` folder (installed as data files by a regular install) and the user's own in
`$GRACE_HOME/playbooks/` (a user file with the same playbook name replaces the shipped one).

Each file is parsed with PyYAML's node tree kept, so a pydantic error's location (`checks.0.max`)
maps back to the line it came from. A bad file becomes a `PlaybookError` naming the file, the
line and the field ("playbooks/x.yaml line 7: checks.0.max: Input should be a valid number") and
never stops the other files loading. No Dagster.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from grace_pipelines.playbooks.model import Playbook

SUFFIXES = (".yaml", ".yml")
_LOCATED = re.compile(r"^([a-z_]+(?:\.[a-z0-9_]+)+): (.*)$", re.S)
DATA_DIR = Path("share") / "grace-pipelines" / "playbooks"  # where a regular install puts the seed files


@dataclass(frozen=True)
class PlaybookError:
    """Why one playbook file did not load."""

    file: str  # as shown to a person: "playbooks/x.yaml" for a shipped file, the full path for a user's
    line: int  # 1-based; 1 when the problem is the file as a whole
    field: str  # dotted location ("checks.0.max"), "(yaml)" for a syntax error, "(file)" for the file itself
    message: str
    path: str = ""  # the file's real path

    def __str__(self) -> str:
        return f"{self.file} line {self.line}: {self.field}: {self.message}"

    @property
    def stem(self) -> str:
        return Path(self.path or self.file).stem

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "text": str(self)}


def seed_dir() -> Path | None:
    """The shipped playbooks: `playbooks/` beside the package in a checkout or an editable
    install, else the data files a regular install put under `sys.prefix`."""
    beside = Path(__file__).resolve().parents[2] / "playbooks"
    if beside.is_dir():
        return beside
    installed = Path(sys.prefix) / DATA_DIR
    return installed if installed.is_dir() else None


def user_dir(home: Path) -> Path:
    return Path(home) / "playbooks"


def playbook_files(folder: Path | None) -> list[Path]:
    if folder is None or not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in SUFFIXES and p.is_file() and not p.name.startswith("."))


def _display(path: Path, folder: Path, shipped: bool) -> str:
    return f"playbooks/{path.relative_to(folder)}" if shipped else str(path)


def _lines(node: yaml.Node, path: tuple[Any, ...], out: dict[tuple[Any, ...], int]) -> None:
    """Map every location in the document (keys and list indexes) to its 1-based line."""
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            where = (*path, key.value)
            out[where] = key.start_mark.line + 1
            _lines(value, where, out)
            out[where] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _lines(item, (*path, i), out)


def _line_of(loc: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> int:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return 1


def _field(loc: tuple[Any, ...]) -> str:
    # pydantic names the union member it tried ("float", "function-after[...]"): not a field of the file
    parts = [str(p) for p in loc if not (isinstance(p, str) and (p in ("float", "int", "str", "bool") or "[" in p))]
    return ".".join(parts) or "(file)"


def parse_file(path: Path, display: str) -> tuple[Playbook | None, list[PlaybookError]]:
    """One file: its playbook, or the errors (each naming file, line and field)."""

    def error(line: int, field: str, message: str) -> PlaybookError:
        return PlaybookError(display, line, field, message, str(path))

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [error(1, "(file)", f"cannot be read: {exc}")]
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        return None, [error(line, "(yaml)", f"not valid YAML: {exc.problem or exc.context}")]
    except yaml.YAMLError as exc:
        return None, [error(1, "(yaml)", f"not valid YAML: {exc}")]
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        return None, [error(1, "(file)", "a playbook file must be a mapping with name, description, trigger, ...")]
    lines: dict[tuple[Any, ...], int] = {}
    _lines(node, (), lines)
    try:
        return Playbook.model_validate(data).with_source(display), []
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            message = err["msg"].removeprefix("Value error, ")
            located = _LOCATED.match(message)
            if located and not loc:  # a whole-playbook rule naming the field it is about
                loc = tuple(int(p) if p.isdigit() else p for p in located.group(1).split("."))
                message = located.group(2)
            problems.append(error(_line_of(loc, lines), _field(loc), message))
        return None, problems


def load_folder(folder: Path | None, *, shipped: bool) -> tuple[list[Playbook], list[PlaybookError]]:
    """Every file of one folder; a playbook name used twice in it is an error on the later file."""
    playbooks: list[Playbook] = []
    errors: list[PlaybookError] = []
    seen: dict[str, str] = {}
    for path in playbook_files(folder):
        assert folder is not None
        display = _display(path, folder, shipped)
        playbook, problems = parse_file(path, display)
        errors.extend(problems)
        if playbook is None:
            continue
        if playbook.name in seen:
            errors.append(
                PlaybookError(
                    display,
                    _name_line(path),
                    "name",
                    f"playbook name {playbook.name!r} is already used by {seen[playbook.name]}",
                    str(path),
                )
            )
            continue
        seen[playbook.name] = display
        playbooks.append(playbook)
    return playbooks, errors


def _name_line(path: Path) -> int:
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.startswith("name:"):
            return i
    return 1


def load_playbooks(
    settings: Any, *, seed: Path | None | bool = True, extra: Iterable[Path] = ()
) -> tuple[list[Playbook], list[PlaybookError]]:
    """The shipped playbooks overridden by `$GRACE_HOME/playbooks/` (same name: the user's wins),
    in name order, and every file's errors. `seed`: True for the shipped folder, a folder, or
    False for none; `extra`: more folders read like the user's (after it)."""
    folder = seed_dir() if seed is True else (seed or None)
    shipped, errors = load_folder(folder, shipped=True)
    by_name = {p.name: p for p in shipped}
    for other in (user_dir(settings.home), *extra):
        found, problems = load_folder(Path(other), shipped=False)
        errors.extend(problems)
        by_name.update({p.name: p for p in found})
    return [by_name[n] for n in sorted(by_name)], errors


def validate_path(path: Path) -> tuple[list[Playbook], list[PlaybookError]]:
    """`grace playbooks validate FILE`: one file, or every file of a folder."""
    path = Path(path)
    if path.is_dir():
        return load_folder(path, shipped=False)
    if not path.exists():
        return [], [PlaybookError(str(path), 1, "(file)", "no such file", str(path))]
    playbook, errors = parse_file(path, str(path))
    return ([playbook] if playbook else []), errors
