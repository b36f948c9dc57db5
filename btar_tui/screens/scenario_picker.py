"""Pick a scenario file to replay: the *.btar.toml files of a folder (by default the project's
scenarios/ folder, else the current directory), or a path typed in, and an optional seed.

Each file shows with the scenario's name and the start of its leading comment (else its
``description``); the highlighted one's whole first paragraph shows under the list."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from simulator.replay_api import SUFFIX, ScenarioInfo, scenario_files, scenario_info

#: (path to replay, seed or None for the scenario's own)
Choice = tuple[str, int | None]


def default_folder() -> Path:
    """scenarios/ of the current directory, else of the btar checkout, else the current
    directory."""
    for folder in (Path.cwd() / "scenarios", Path(__file__).resolve().parents[2] / "scenarios"):
        if folder.is_dir():
            return folder
    return Path.cwd()


def option_prompt(info: ScenarioInfo) -> Group:
    """Two lines: the name, the file on the right (always whole: a long name is cut), then
    the start of the description."""
    grid = Table.grid(expand=True, padding=(0, 2))
    grid.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
    grid.add_column(no_wrap=True, justify="right")
    grid.add_row(Text(info.name or "(no name)", style="bold"),
                 Text(info.path.name, style="dim"))
    about = Text("  " + (info.about or "no description"), no_wrap=True, overflow="ellipsis",
                 style="italic" if info.about else "dim")
    return Group(grid, about)


def clipped(text: str, width: int, lines: int) -> str:
    """``text`` wrapped to ``width``, at most ``lines`` lines, the last one ending in … when
    some is left out."""
    if width < 2:
        return ""
    wrapped = textwrap.wrap(text, width)
    if len(wrapped) <= lines:
        return "\n".join(wrapped)
    last = textwrap.shorten(" ".join(wrapped[lines - 1:]), width, placeholder="…")
    return "\n".join([*wrapped[:lines - 1], last])


class About(Widget):
    """The highlighted scenario's whole name and first comment paragraph, on the lines it
    has."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.info: ScenarioInfo | None = None

    def show(self, info: ScenarioInfo | None) -> None:
        self.info = info
        self.refresh()

    def render(self) -> Text:
        if self.info is None:
            return Text()
        name = f"{self.info.name}: " if self.info.name else ""
        text = Text(clipped(name + self.info.about, self.content_size.width,
                            self.content_size.height or 1))
        text.stylize("bold", 0, len(name.rstrip()))
        return text


def shown_path(path: Path) -> str:
    """Relative to the current directory when inside it: the replay command stays short."""
    resolved = path.resolve()
    try:
        return str(resolved.relative_to(Path.cwd()))
    except ValueError:
        return os.fspath(resolved)


class ScenarioPicker(ModalScreen[Choice | None]):
    DEFAULT_CSS = """
    ScenarioPicker #scenario-about {
        height: 3;
        color: $text-muted;
    }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, folder: Path | None = None) -> None:
        super().__init__(classes="dialog-screen")
        self.folder = folder or default_folder()
        self.infos: dict[str, ScenarioInfo] = {}

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="replay-dialog"):
            yield Label("Replay a scenario in the simulator", classes="dialog-title")
            yield Input(shown_path(self.folder), compact=True, id="scenario-path",
                        placeholder=f"a folder of *{SUFFIX} files, or a scenario file")
            yield OptionList(id="scenario-files")
            yield About(id="scenario-about")
            with Horizontal(classes="field"):
                yield Label("seed", classes="field-label")
                yield Input(placeholder="blank: the scenario's own", type="integer",
                            compact=True, id="scenario-seed")
            yield Static("enter replays the highlighted file; a path typed above lists its "
                         "folder", classes="dialog-hint")
            yield Static("", id="picker-error", classes="dialog-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Replay", variant="primary", id="replay", compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.list_folder(self.folder)

    def list_folder(self, folder: Path) -> None:
        self.folder = folder
        files = scenario_files(folder)
        options = self.query_one("#scenario-files", OptionList)
        options.clear_options()
        self.infos = {str(p): scenario_info(p) for p in files}
        options.add_options([Option(option_prompt(info), id=key)
                             for key, info in self.infos.items()])
        self.query_one(About).show(None)
        error = "" if files else f"no *{SUFFIX} file in {shown_path(folder)}"
        self.show_error(error)
        if files:
            options.highlighted = 0
            options.focus()

    def show_error(self, text: str) -> None:
        """Show a problem (the line takes no room without one)."""
        shown = self.query_one("#picker-error", Static)
        shown.update(text)
        shown.display = bool(text)

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self.query_one(About).show(self.infos.get(event.option.id or ""))

    def choose(self, path: Path) -> None:
        seed_text = self.query_one("#scenario-seed", Input).value.strip()
        try:
            seed = int(seed_text) if seed_text else None
        except ValueError:
            self.show_error(f"the seed {seed_text!r} is not a whole number")
            return
        self.dismiss((shown_path(path), seed))

    def _submit_path(self) -> None:
        typed = self.query_one("#scenario-path", Input).value.strip()
        path = Path(typed).expanduser() if typed else Path.cwd()
        if path.is_dir():
            self.list_folder(path)
        elif path.is_file():
            self.choose(path)
        else:
            self.show_error(f"no such folder or file: {typed}")

    def _submit_highlighted(self) -> None:
        options = self.query_one("#scenario-files", OptionList)
        if options.highlighted is None:
            self._submit_path()
            return
        option = options.get_option_at_index(options.highlighted)
        if option.id is not None:
            self.choose(Path(option.id))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "scenario-path":
            self._submit_path()
        else:
            self._submit_highlighted()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id is not None:
            self.choose(Path(event.option.id))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "replay":
            typed = self.query_one("#scenario-path", Input).value.strip()
            if typed and Path(typed).expanduser().is_file():
                self.choose(Path(typed).expanduser())
            else:
                self._submit_highlighted()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)
