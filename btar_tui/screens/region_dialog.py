"""Enable or change the additional region: only qualifying regions are offered (rule 2),
farthest first, with their distance from the primary; regions without a configured backup
location are listed but greyed out, since they cannot be used yet."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, OptionList, Static
from textual.widgets.option_list import Option

from btar_tui import workers
from btar_tui.messages import ActionFailed, ActionSucceeded, RegionsOffered
from engine.model import Region
from engine.regions import distance_km, get_region

if TYPE_CHECKING:
    from btar_tui.app import BtarApp

Mode = Literal["enable", "change"]
NOTE_WIDTH = 11


def region_prompt(region: Region, primary: Region, id_width: int, note: str) -> Text:
    """``id  distance  note  name``: the facts that decide first, the long name last (it is
    what gets cropped in a narrow terminal)."""
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(region.id.ljust(id_width), style="bold")
    text.append(f"  {distance_km(primary, region):>7,.0f} km  ")
    text.append(note.ljust(NOTE_WIDTH), style="italic")
    text.append(f"  {region.name}")
    return text


def ordered(offered: list[tuple[Region, bool]]) -> list[tuple[Region, bool]]:
    """Usable regions first; each group keeps the engine's order (farthest first)."""
    return [o for o in offered if o[1]] + [o for o in offered if not o[1]]


class RegionDialog(ModalScreen[str | None]):
    """Pick the additional region of a service; dismisses with a success message."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, service: str, mode: Mode) -> None:
        super().__init__(classes="dialog-screen")
        self.service = service
        self.mode = mode
        self.current: str | None = None

    @property
    def btar_app(self) -> BtarApp:
        return cast("BtarApp", self.app)

    def compose(self) -> ComposeResult:
        verb = "Enable an additional backup region" if self.mode == "enable" else \
            "Change the additional backup region"
        with Vertical(classes="dialog", id="region-dialog"):
            yield Label(f"{verb} for [b]{self.service}[/b]", classes="dialog-title")
            yield Static("loading the qualifying regions…", id="region-hint",
                         classes="dialog-hint")
            yield OptionList(id="regions")
            yield Static("", id="dialog-error", classes="dialog-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.mode.capitalize(), variant="primary", id="confirm",
                             disabled=True, compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    def on_mount(self) -> None:
        name, bridge = self.service, self.btar_app.bridge

        def load() -> None:
            offered, current = bridge.call(
                lambda b: (b.offered_regions(name), b.additional_region(name)))
            self.post_message(RegionsOffered(offered, current))

        workers.start(self, "regions", load)

    def on_regions_offered(self, message: RegionsOffered) -> None:
        self.current = message.current
        status = next((s for s in self.btar_app.statuses if s.name == self.service), None)
        primary = get_region(status.primary_region) if status else None
        options = self.query_one("#regions", OptionList)
        options.clear_options()
        if primary is None or not message.offered:
            self.query_one("#region-hint", Static).update("no region qualifies")
            return
        id_width = max(len(r.id) for r, _ in message.offered)
        for region, configured in ordered(message.offered):
            note = "" if configured else "no location"
            if region.id == message.current:
                note = "current"
            options.add_option(Option(region_prompt(region, primary, id_width, note),
                                      id=region.id,
                                      disabled=not configured or region.id == message.current))
        usable = sum(1 for r, c in message.offered if c and r.id != message.current)
        now = f"; now {message.current}" if message.current else ""
        self.query_one("#region-hint", Static).update(Text(
            f"{primary.provider} regions other than {primary.id}, farthest first{now}. "
            f"{usable} usable; greyed ones need a location in [regions] of the configuration."))
        first = next((i for i in range(options.option_count)
                      if not options.get_option_at_index(i).disabled), None)
        if first is not None:
            options.highlighted = first
        options.focus()

    def selected_region(self) -> str | None:
        options = self.query_one("#regions", OptionList)
        if options.highlighted is None:
            return None
        option = options.get_option_at_index(options.highlighted)
        return None if option.disabled else option.id

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self.query_one("#confirm", Button).disabled = event.option.disabled

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if not event.option.disabled:
            self.confirm()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "confirm":
            self.confirm()
        else:
            self.dismiss(None)

    def confirm(self) -> None:
        region = self.selected_region()
        if region is None:
            return
        name, mode, bridge = self.service, self.mode, self.btar_app.bridge
        self.query_one("#confirm", Button).disabled = True

        def act() -> None:
            if mode == "enable":
                bridge.call(lambda b: b.enable(name, region))
                text = f"{name}: backups now replicate to {region}; press s to sync now"
            else:
                old = self.current
                bridge.call(lambda b: b.change_region(name, region))
                text = (f"{name}: additional region is now {region}; {old} keeps replicating "
                        "until it can restore")
            self.post_message(ActionSucceeded(mode, text))

        workers.start(self, mode, act)

    def on_action_succeeded(self, message: ActionSucceeded) -> None:
        self.dismiss(message.message)

    def on_action_failed(self, message: ActionFailed) -> None:
        # Refusals stay in the dialog: the user can pick another region or cancel.
        self.query_one("#dialog-error", Static).update(message.message)
        if message.action == "regions":
            self.query_one("#region-hint", Static).update("no region can be offered")
            self.query_one("#regions", OptionList).display = False
        else:
            self.query_one("#confirm", Button).disabled = self.selected_region() is None

    def action_cancel(self) -> None:
        self.dismiss(None)
