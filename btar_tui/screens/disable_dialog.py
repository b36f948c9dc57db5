"""Disable replication, saying what happens to the copies (rule 7): keep them (retained) or
delete them, which needs the service name typed exactly."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, RadioButton, RadioSet, Static

from btar_tui import workers
from btar_tui.messages import ActionFailed, ActionSucceeded

if TYPE_CHECKING:
    from btar_tui.app import BtarApp


class DisableDialog(ModalScreen[str | None]):
    """Stop replicating a service; dismisses with a success message."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, service: str, regions: list[str]) -> None:
        super().__init__(classes="dialog-screen")
        self.service = service
        self.regions = regions

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
                yield RadioButton("keep them: listed as retained until their retention runs out",
                                  value=True, id="keep")
                yield RadioButton("delete them (never the only restorable copy of a point)",
                                  id="delete")
            yield Input(placeholder=f"type {self.service} to confirm the deletion",
                        id="confirm-name", disabled=True, compact=True)
            yield Static("", id="dialog-error", classes="dialog-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Disable, keep copies", variant="error", id="confirm",
                             compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    @property
    def deleting(self) -> bool:
        return self.query_one("#delete", RadioButton).value

    def _update_confirm(self) -> None:
        typed = self.query_one("#confirm-name", Input).value
        button = self.query_one("#confirm", Button)
        # The label says what will happen: colour alone would not tell in every terminal.
        button.label = "Disable, delete copies" if self.deleting else "Disable, keep copies"
        button.disabled = self.deleting and typed != self.service

    def on_radio_set_changed(self, event: RadioSet.Changed) -> None:
        name_input = self.query_one("#confirm-name", Input)
        name_input.disabled = not self.deleting
        if self.deleting:
            name_input.focus()
        self._update_confirm()

    def on_input_changed(self, event: Input.Changed) -> None:
        self._update_confirm()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if not self.query_one("#confirm", Button).disabled:
            self.confirm()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "confirm":
            self.confirm()
        else:
            self.dismiss(None)

    def confirm(self) -> None:
        delete = self.deleting
        if delete and self.query_one("#confirm-name", Input).value != self.service:
            return  # the button is disabled; Enter in the input must not bypass it
        name, bridge = self.service, self.btar_app.bridge
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
        self.query_one("#dialog-error", Static).update(message.message)
        self._update_confirm()

    def action_cancel(self) -> None:
        self.dismiss(None)
