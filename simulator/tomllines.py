"""Where each key of a TOML document is written: tomllib parses values but forgets lines, and a
scenario error must name the line.

``key_lines(text)`` maps every key path (tuple of keys and array indices, as pydantic reports
them) to the 1-based line where it is written. It is a scanner, not a validator: call it only
on text that tomllib already accepted.
"""

from __future__ import annotations

Path = tuple[str | int, ...]

_BARE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1
        self.lines: dict[Path, int] = {}
        #: array-of-tables path -> how many elements were opened so far
        self.arrays: dict[Path, int] = {}

    # -- characters ---------------------------------------------------------------------------

    def peek(self, offset: int = 0) -> str:
        index = self.pos + offset
        return self.text[index] if index < len(self.text) else ""

    def advance(self, count: int = 1) -> None:
        for _ in range(count):
            if self.pos < len(self.text):
                if self.text[self.pos] == "\n":
                    self.line += 1
                self.pos += 1

    def skip_blank(self, newlines: bool) -> None:
        """Skip spaces, comments and (when asked) newlines."""
        while self.pos < len(self.text):
            char = self.peek()
            if char in " \t\r" or (newlines and char == "\n"):
                self.advance()
            elif char == "#":
                while self.pos < len(self.text) and self.peek() != "\n":
                    self.advance()
            else:
                return

    # -- pieces -------------------------------------------------------------------------------

    def string(self) -> str:
        quote = self.peek()
        if self.text.startswith(quote * 3, self.pos):
            self.advance(3)
            start = self.pos
            while self.pos < len(self.text) and not self.text.startswith(quote * 3, self.pos):
                self.advance(2 if quote == '"' and self.peek() == "\\" else 1)
            value = self.text[start:self.pos]
            self.advance(3)
            while self.peek() == quote:  # up to two quotes may close the content
                self.advance()
            return value
        self.advance()
        start = self.pos
        while self.pos < len(self.text) and self.peek() != quote:
            self.advance(2 if quote == '"' and self.peek() == "\\" else 1)
        value = self.text[start:self.pos]
        self.advance()
        return value

    def key(self) -> list[str]:
        parts: list[str] = []
        while True:
            self.skip_blank(newlines=False)
            if self.peek() in ('"', "'"):
                parts.append(self.string())
            else:
                start = self.pos
                while self.peek() in _BARE and self.peek():
                    self.advance()
                parts.append(self.text[start:self.pos])
            self.skip_blank(newlines=False)
            if self.peek() != ".":
                return parts
            self.advance()

    def value(self, path: Path) -> None:
        self.skip_blank(newlines=False)
        char = self.peek()
        if char in ('"', "'"):
            self.string()
        elif char == "[":
            self.advance()
            index = 0
            while True:
                self.skip_blank(newlines=True)
                if self.peek() in ("]", ""):
                    self.advance()
                    return
                self.lines.setdefault((*path, index), self.line)
                self.value((*path, index))
                index += 1
                self.skip_blank(newlines=True)
                if self.peek() == ",":
                    self.advance()
        elif char == "{":
            self.advance()
            while True:
                self.skip_blank(newlines=False)
                if self.peek() in ("}", ""):
                    self.advance()
                    return
                line = self.line
                parts = self.key()
                self._record(path, parts, line)
                self.advance()  # "="
                self.value((*path, *parts))
                self.skip_blank(newlines=False)
                if self.peek() == ",":
                    self.advance()
        else:
            while self.peek() not in ("", ",", "]", "}", "\n", "#"):
                self.advance()

    def _record(self, base: Path, parts: list[str], line: int) -> None:
        for depth in range(1, len(parts) + 1):
            self.lines.setdefault((*base, *parts[:depth]), line)

    def header(self) -> Path:
        double = self.text.startswith("[[", self.pos)
        self.advance(2 if double else 1)
        line = self.line
        parts = self.key()
        self.advance(2 if double else 1)
        path: list[str | int] = []
        for depth, part in enumerate(parts):
            path.append(part)
            last = depth == len(parts) - 1
            if last and double:
                count = self.arrays.get(tuple(path), 0)
                self.arrays[tuple(path)] = count + 1
                self.lines.setdefault(tuple(path), line)
                path.append(count)
            elif tuple(path) in self.arrays:
                path.append(self.arrays[tuple(path)] - 1)
            self.lines.setdefault(tuple(path), line)
        return tuple(path)

    def document(self) -> dict[Path, int]:
        table: Path = ()
        while True:
            self.skip_blank(newlines=True)
            if self.pos >= len(self.text):
                return self.lines
            if self.peek() == "[":
                table = self.header()
                continue
            line = self.line
            parts = self.key()
            self._record(table, parts, line)
            self.skip_blank(newlines=False)
            self.advance()  # "="
            self.value((*table, *parts))


def key_lines(text: str) -> dict[Path, int]:
    """Line of every key path written in ``text`` (a TOML document tomllib accepted)."""
    return _Scanner(text).document()


def line_of(lines: dict[Path, int], path: Path) -> int:
    """The line of ``path``, else of its nearest written parent (a missing key is reported at
    its table), else 1."""
    for depth in range(len(path), 0, -1):
        if path[:depth] in lines:
            return lines[path[:depth]]
    return 1


def dotted(path: Path) -> str:
    """``("services", 0, "schedule")`` -> ``services[0].schedule``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text or "(top level)"
