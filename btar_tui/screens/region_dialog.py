"""Enable or change the additional region: only qualifying regions are offered (rule 2), in
the engine's order (farthest first), with their distance from the primary. Regions that cannot
be picked (no backup location configured, the current one) are listed greyed out; moving onto
one, Enter or the button says why, and the dialog stays open."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.geometry import Region as Area
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


def region_prompt(region: Region, primary: Region, id_width: int, note: str,
                  usable: bool = True) -> Text:
    """``id  distance  note  name``: the facts that decide first, the long name last (it is
    what gets cropped, with an ellipsis, in a narrow terminal: a row never wraps)."""
    text = Text(no_wrap=True, overflow="ellipsis", style="" if usable else "dim")
    text.append(region.id.ljust(id_width), style="bold")
    text.append(f"  {distance_km(primary, region):>7,.0f} km  ")
    text.append(note.ljust(NOTE_WIDTH), style="italic")
    text.append(f"  {region.name}")
    return text


def unusable_reason(region: Region, configured: bool, *, service: str, mode: Mode,
                    current: str | None, config_name: str) -> str:
    """Why ``region`` cannot be picked in this dialog; "" when it can."""
    if region.id == current:
        return f"{region.id} is already the additional region of {service}"
    if mode == "enable" and current is not None:
        return f"{service} already replicates to {current} (rule 8); to move it: Escape, then c"
    if not configured:
        return f"{region.id} has no backup location in [regions]; add one to {config_name}"
    return ""


class RegionDialog(ModalScreen[str | None]):
    """Pick the additional region of a service; dismisses with a success message."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    #: columns for the longest id, distance, note and name; app.tcss sizes every dialog for
    #: 80 columns and its rules beat DEFAULT_CSS, so this is set inline (max-width still
    #: applies: narrower terminals crop the names with an ellipsis)
    WIDTH = 96
    DEFAULT_CSS = """
    RegionDialog #regions {
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    def __init__(self, service: str, mode: Mode) -> None:
        super().__init__(classes="dialog-screen")
        self.service = service
        self.mode = mode
        self.current: str | None = None
        #: offered region id -> why it cannot be picked ("" when it can), in the list's order
        self.reasons: dict[str, str] = {}
        self.loaded = False
        self.working = False

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
                             compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#region-dialog").styles.width = self.WIDTH
        name, bridge = self.service, self.btar_app.bridge

        def load() -> None:
            offered, current = bridge.call(
                lambda b: (b.offered_regions(name), b.additional_region(name)))
            self.post_message(RegionsOffered(offered, current))

        workers.start(self, "regions", load)

    def on_regions_offered(self, message: RegionsOffered) -> None:
        self.current = message.current
        self.loaded = True
        status = next((s for s in self.btar_app.statuses if s.name == self.service), None)
        primary = get_region(status.primary_region) if status else None
        options = self.query_one("#regions", OptionList)
        options.clear_options()
        self.reasons = {}
        if primary is None or not message.offered:
            self.query_one("#region-hint", Static).update("no region qualifies")
            return
        config_name = self.btar_app.bridge.config_path.name
        id_width = max(len(r.id) for r, _ in message.offered)
        # The engine's order as it is (rule 2: farthest first), which the hint states.
        for region, configured in message.offered:
            reason = unusable_reason(region, configured, service=self.service, mode=self.mode,
                                     current=message.current, config_name=config_name)
            self.reasons[region.id] = reason
            note = "current" if region.id == message.current else \
                "" if configured else "no location"
            options.add_option(Option(region_prompt(region, primary, id_width, note,
                                                    usable=not reason), id=region.id))
        now = f"; now {message.current}" if message.current else ""
        if self.mode == "enable" and message.current:
            usable = "Already enabled: nothing to enable (rule 8)."
        else:
            count = sum(1 for reason in self.reasons.values() if not reason)
            greyed = any(not configured for _, configured in message.offered)
            usable = f"{count} usable" + (
                f"; greyed ones need a location in [regions] of {config_name}." if greyed
                else ".")
        self.query_one("#region-hint", Static).update(Text(
            f"{primary.provider} regions other than {primary.id}, farthest first{now}. "
            f"{usable}"))
        # Start on the farthest usable region (on the first row if none is usable, where
        # Enter says why), in the middle of the list so the nearer ones after it show too.
        first = next((i for i, reason in enumerate(self.reasons.values()) if not reason), 0)
        options.highlighted = first
        options.focus()

        def centre() -> None:
            options.scroll_to_region(Area(0, first, options.scrollable_content_region.width, 1),
                                     center=True, animate=False, force=True, immediate=True)

        self.call_after_refresh(centre)

    def highlighted_region(self) -> str | None:
        options = self.query_one("#regions", OptionList)
        if options.highlighted is None or not options.option_count:
            return None
        return options.get_option_at_index(options.highlighted).id

    def selected_region(self) -> str | None:
        """The highlighted region if it can be picked."""
        region = self.highlighted_region()
        return region if region is not None and not self.reasons.get(region) else None

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        # Say at once why the highlighted row cannot be picked; nothing on a usable one.
        if not self.working:
            self.say(self.reasons.get(event.option.id or "", ""))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.confirm()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "confirm":
            self.confirm()
        else:
            self.dismiss(None)

    def say(self, text: str) -> None:
        """Show why something cannot be done (plain text: "[regions]" is not markup)."""
        self.query_one("#dialog-error", Static).update(Text(text))

    def why_not(self) -> str:
        """Why confirming now would do nothing; "" when it acts."""
        if self.working:
            return f"{self.mode}: under way…"
        if not self.loaded:
            return "the qualifying regions are still loading"
        region = self.highlighted_region()
        if region is None:
            if self.reasons:
                return "highlight a region first (up, down)"
            shown = str(self.query_one("#dialog-error", Static).render())
            return shown or f"no region can be offered to {self.service}"
        return self.reasons.get(region, "")

    def confirm(self) -> None:
        why = self.why_not()
        if why:
            # Never close nor stay silent: the reason is shown and the dialog stays.
            self.say(why)
            return
        region = self.selected_region()
        assert region is not None
        name, mode, bridge = self.service, self.mode, self.btar_app.bridge
        self.working = True
        self.query_one("#confirm", Button).disabled = True
        self.say("")

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
        self.working = False
        self.query_one("#confirm", Button).disabled = False
        self.say(message.message)
        if message.action == "regions":
            self.loaded = True
            self.query_one("#region-hint", Static).update("no region can be offered")
            self.query_one("#regions", OptionList).display = False

    def action_cancel(self) -> None:
        self.dismiss(None)
