"""Pick a scenario file to replay: the *.btar.toml files of a folder (by default the project's
scenarios/ folder, else the current directory), or a path typed in, and an optional seed."""

from __future__ import annotations

import os
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

SUFFIX = ".btar.toml"
#: (path to replay, seed or None for the scenario's own)
Choice = tuple[str, int | None]


def default_folder() -> Path:
    """scenarios/ of the current directory, else of the btar checkout, else the current
    directory."""
    for folder in (Path.cwd() / "scenarios", Path(__file__).resolve().parents[2] / "scenarios"):
        if folder.is_dir():
            return folder
    return Path.cwd()


def scenario_files(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.glob(f"*{SUFFIX}") if p.is_file())
    except OSError:
        return []


def shown_path(path: Path) -> str:
    """Relative to the current directory when inside it: the replay command stays short."""
    resolved = path.resolve()
    try:
        return str(resolved.relative_to(Path.cwd()))
    except ValueError:
        return os.fspath(resolved)


class ScenarioPicker(ModalScreen[Choice | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, folder: Path | None = None) -> None:
        super().__init__(classes="dialog-screen")
        self.folder = folder or default_folder()

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="replay-dialog"):
            yield Label("Replay a scenario in the simulator", classes="dialog-title")
            yield Input(shown_path(self.folder), compact=True, id="scenario-path",
                        placeholder=f"a folder of *{SUFFIX} files, or a scenario file")
            yield OptionList(id="scenario-files")
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
        options.add_options([Option(p.name, id=str(p)) for p in files])
        error = "" if files else f"no *{SUFFIX} file in {shown_path(folder)}"
        self.query_one("#picker-error", Static).update(error)
        if files:
            options.highlighted = 0
            options.focus()

    def choose(self, path: Path) -> None:
        seed_text = self.query_one("#scenario-seed", Input).value.strip()
        try:
            seed = int(seed_text) if seed_text else None
        except ValueError:
            self.query_one("#picker-error", Static).update(f"the seed {seed_text!r} is not "
                                                           "a whole number")
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
            self.query_one("#picker-error", Static).update(f"no such folder or file: {typed}")

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
