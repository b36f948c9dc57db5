"""Disable replication, saying what happens to the copies (rule 7): keep them (retained) or
delete them, which needs the service name typed exactly."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, RadioButton, RadioSet, Static

from btar_tui import workers
from btar_tui.messages import ActionFailed, ActionSucceeded
from btar_tui.widgets.choice import ChoiceButton

if TYPE_CHECKING:
    from btar_tui.app import BtarApp

KEEP_LABEL = "keep them: listed as retained, still restorable there"


class RetentionKnown(Message):
    """The retention policy of the service being disabled: base backups always kept and
    the age under which every one is kept; ``keep_count`` None when it has no policy."""

    def __init__(self, keep_count: int | None, keep_age: float | None) -> None:
        super().__init__()
        self.keep_count = keep_count
        self.keep_age = keep_age


def describe_retention(keep_count: int, keep_age: float | None) -> str:
    """"keep 7 base backups, and any younger than 14d"."""
    text = f"keep {keep_count} base backup{'s' if keep_count != 1 else ''}"
    if keep_age is not None:
        age = f"{keep_age / 86400:g}d" if keep_age >= 86400 else f"{keep_age / 3600:g}h"
        text += f", and any younger than {age}"
    return text


def retention_note(service: str, keep_count: int | None, keep_age: float | None) -> str:
    """What becomes of the retention policy for kept copies; "" without one. The engine applies
    retention to the active additional region only, never to retained copies."""
    if keep_count is None:
        return ""
    return (f"Kept copies: the retention policy of {service} "
            f"({describe_retention(keep_count, keep_age)}) applies only while replicating; "
            "btar deletes none of them.")


class DisableDialog(ModalScreen[str | None]):
    """Stop replicating a service; dismisses with a success message."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    DisableDialog #keep-note {
        padding-left: 4;
    }
    DisableDialog #confirm-name {
        border: tall $border-blurred;
    }
    DisableDialog #confirm-name:focus {
        border: tall $border;
    }
    DisableDialog #confirm {
        width: 24;
    }
    """

    def __init__(self, service: str, regions: list[str]) -> None:
        super().__init__(classes="dialog-screen")
        self.service = service
        self.regions = regions
        self.working = False

    @property
    def btar_app(self) -> BtarApp:
        return cast("BtarApp", self.app)

    def compose(self) -> ComposeResult:
        where = ", ".join(self.regions) if self.regions else "its additional region"
        with Vertical(classes="dialog", id="disable-dialog"):
            yield Label(f"Disable replication of [b]{self.service}[/b]", classes="dialog-title")
            yield Static(f"Copying to {where} stops. What happens to the copies there?",
                         classes="dialog-hint")
            with RadioSet(id="mode", compact=True):
                yield ChoiceButton(KEEP_LABEL, value=True, id="keep")
                yield ChoiceButton("delete them (never the only restorable copy of a point)",
                                   id="delete")
            yield Static("", id="keep-note", classes="dialog-hint")
            yield Input(placeholder=f"type {self.service} to confirm the deletion",
                        id="confirm-name", disabled=True)
            yield Static("", id="dialog-error", classes="dialog-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Disable, keep copies", variant="error", id="confirm",
                             compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#keep-note", Static).display = False
        name, bridge = self.service, self.btar_app.bridge

        def load() -> None:
            policy = bridge.call(lambda b: b.retention.get(name))
            age = policy.keep_age.total_seconds() if policy and policy.keep_age else None
            self.post_message(RetentionKnown(policy.keep_count if policy else None, age))

        workers.start(self, "retention", load)

    def on_retention_known(self, message: RetentionKnown) -> None:
        note = self.query_one("#keep-note", Static)
        text = retention_note(self.service, message.keep_count, message.keep_age)
        note.update(Text(text))
        note.display = bool(text)

    @property
    def deleting(self) -> bool:
        return self.query_one("#delete", RadioButton).value

    def say(self, text: str) -> None:
        """Show why something cannot be done (plain text: brackets are not markup)."""
        self.query_one("#dialog-error", Static).update(Text(text))

    def why_not(self) -> str:
        """Why the confirm button would do nothing now; "" when it acts."""
        if self.working:
            return "disabling: under way…"
        if self.deleting and self.query_one("#confirm-name", Input).value != self.service:
            return f"type {self.service} exactly in the field above to confirm the deletion"
        return ""

    def _update_confirm(self) -> None:
        button = self.query_one("#confirm", Button)
        # The label says what will happen: colour alone would not tell in every terminal.
        button.label = "Disable, delete copies" if self.deleting else "Disable, keep copies"
        # Enabled unless it would do nothing; then the line above it says why.
        button.disabled = bool(self.why_not())
        if not self.working:
            self.say(self.why_not())

    def on_radio_set_changed(self, event: RadioSet.Changed) -> None:
        name_input = self.query_one("#confirm-name", Input)
        name_input.disabled = not self.deleting
        if self.deleting:
            name_input.focus()
        self._update_confirm()

    def on_input_changed(self, event: Input.Changed) -> None:
        self._update_confirm()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.confirm()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "confirm":
            self.confirm()
        else:
            self.dismiss(None)

    def confirm(self) -> None:
        why = self.why_not()
        if why:
            # Enter in the input must not bypass the confirmation; say what is missing.
            self.say(why)
            return
        delete = self.deleting
        name, bridge = self.service, self.btar_app.bridge
        self.working = True
        self.query_one("#confirm", Button).disabled = True

        def act() -> None:
            outcome = bridge.call(lambda b: b.disable(name, keep=not delete, delete=delete,
                                                      confirmed=True))
            regions = ", ".join(outcome.regions)
            text = (f"{name}: replication stopped; copies in {regions} are retained"
                    if outcome.mode == "keep" else
                    f"{name}: replication stopped; deleted {outcome.deleted_objects} objects "
                    f"in {regions}")
            self.post_message(ActionSucceeded("disable", text))

        workers.start(self, "disable", act)

    def on_action_succeeded(self, message: ActionSucceeded) -> None:
        self.dismiss(message.message)

    def on_action_failed(self, message: ActionFailed) -> None:
        if message.action == "retention":
            return  # the note stays hidden; disabling does not depend on it
        self.working = False
        self._update_confirm()
        self.say(message.message)

    def action_cancel(self) -> None:
        self.dismiss(None)
