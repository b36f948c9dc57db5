"""The fork wizard: pick the region (its own copy is restored there, rule 6), latest or a
point in time validated live against that region's window (rule 5), see the plan, run it
with progress, and get a summary of what was laid out where."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, ProgressBar, RadioButton, RadioSet, Select, Static

from btar_tui import workers
from btar_tui.format import duration, size, when_iso
from btar_tui.messages import (
    ActionFailed,
    ForkFinished,
    ForkPlanned,
    ForkProgressed,
    WindowsLoaded,
)
from engine.errors import BtarError
from engine.model import RegionRole, parse_iso
from engine.restore import RestorePlan

if TYPE_CHECKING:
    from btar_tui.app import BtarApp


LATEST_HINT = "latest: the end of the region's window"
TIME_HINT = "ISO 8601 UTC, e.g. 2026-01-15T11:30:00Z"


def plan_text(plan: RestorePlan, throughput: float, measured: bool) -> Text:
    """The plan in the CLI's words, one fact per line."""
    text = Text()
    latest = " (latest)" if plan.target is None else ""
    text.append(f"restore to   {when_iso(plan.effective_target)}{latest} in {plan.region}\n",
                style="bold")
    window = f"{when_iso(plan.window.start)} .. {when_iso(plan.window.end)}"
    gaps = len(plan.window.intervals) - 1
    text.append(f"window       {window}" + (f" ({gaps} gaps)" if gaps > 0 else "") + "\n")
    text.append(f"base backup  {plan.base_id}, consistent at {when_iso(plan.base_end)}\n")
    if plan.segments:
        first, last = plan.segments[0], plan.segments[-1]
        text.append(f"log segments {len(plan.segments)}: {first.item_id} .. {last.item_id}\n")
    else:
        text.append("log segments none: the base backup alone reaches the target\n")
    text.append(f"to fetch     {len(plan.objects)} objects, {size(plan.bytes_total)}\n")
    seconds = plan.bytes_total / throughput if throughput > 0 else 0.0
    basis = "measured on earlier forks" if measured else "assumed, none measured yet"
    estimate = "under a second" if seconds < 1 else duration(seconds)
    text.append(f"estimate     {estimate} at {size(int(throughput))}/s ({basis})")
    if plan.expected_data_loss_seconds is not None:
        text.append(f"\ndata loss    {duration(plan.expected_data_loss_seconds)} behind the "
                    "primary's latest point")
    return text


class ForkWizard(ModalScreen[str | None]):
    """Plan and run a fork of one service; dismisses with the summary once done."""

    BINDINGS = [Binding("escape", "cancel", "Close")]

    def __init__(self, service: str) -> None:
        super().__init__(classes="dialog-screen")
        self.service = service
        self.plan: RestorePlan | None = None
        self.target: datetime | None = None
        self.running = False
        self.summary: str | None = None
        self._request = 0
        self._planned_region: str | None = None

    @property
    def btar_app(self) -> BtarApp:
        return cast("BtarApp", self.app)

    def default_destination(self) -> str:
        return f"forks/{self.service}-{self.btar_app.bridge.now():%Y%m%dT%H%M%SZ}"

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="fork-dialog"):
            yield Label(f"Fork [b]{self.service}[/b]  [dim](a copy restores only where it is "
                        "stored, inside its window)[/dim]", classes="dialog-title")
            with Horizontal(classes="field", id="region-row"):
                yield Label("Region", classes="field-label")
                yield Label("loading the regions…", id="region-loading")
            with Horizontal(classes="field"):
                yield Label("When", classes="field-label")
                with RadioSet(id="when", compact=True):
                    yield RadioButton("latest", value=True, id="latest")
                    yield RadioButton("point in time (UTC)", id="pitr")
            with Horizontal(classes="field"):
                yield Label("Target", classes="field-label")
                yield Input(placeholder=LATEST_HINT, id="target", disabled=True, compact=True)
            yield Static("", id="plan")
            with Horizontal(classes="field"):
                yield Label("Into", classes="field-label")
                yield Input(self.default_destination(), id="into", compact=True)
            yield Static("relative to the configuration's folder; running again resumes",
                         classes="dialog-hint field-hint")
            with Horizontal(classes="dialog-buttons"):
                yield ProgressBar(show_eta=False, id="fork-bar")
                yield Button("Fork", variant="primary", id="run", disabled=True, compact=True)
                yield Button("Close", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#fork-bar", ProgressBar).display = False
        name, bridge = self.service, self.btar_app.bridge
        workers.start(self, "windows",
                      lambda: self.post_message(WindowsLoaded(bridge.call(
                          lambda b: b.windows(name)))))

    async def on_windows_loaded(self, message: WindowsLoaded) -> None:
        loading = self.query_one("#region-loading", Label)
        if not message.windows:
            loading.update("none")
            self._show_refusal(f"{self.service} has no region with backups yet")
            return
        # The additional region first: restoring from it is what the feature is for.
        preferred = next((w.region for w in message.windows if w.role == RegionRole.SECONDARY),
                         message.windows[0].region)
        options = [(f"{w.region} · {w.role}", w.region) for w in message.windows]
        select = Select(options, value=preferred, allow_blank=False, compact=True,
                        id="fork-region")
        await self.query_one("#region-row", Horizontal).mount(select, after=loading)
        await loading.remove()
        select.focus()
        self.replan()

    # -- planning ----------------------------------------------------------------------------

    @property
    def chosen_region(self) -> str | None:
        found = self.query("#fork-region")
        if not found:
            return None
        value = found.first(Select).value
        return value if isinstance(value, str) else None

    @property
    def latest(self) -> bool:
        return self.query_one("#latest", RadioButton).value

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.value != self._planned_region:
            self.replan()

    def on_radio_set_changed(self, event: RadioSet.Changed) -> None:
        target = self.query_one("#target", Input)
        target.disabled = self.latest
        target.placeholder = LATEST_HINT if self.latest else TIME_HINT
        if not self.latest:
            target.focus()
        self.replan()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "target":
            self.replan()

    def replan(self) -> None:
        """Validate the choice now: a bad time is refused here, a time outside the window
        by the engine (rule 5), and the refusal replaces the plan."""
        self._request += 1
        request, region, name = self._request, self.chosen_region, self.service
        self.plan = None
        self._update_run()
        if region is None or self.running:
            return
        target: datetime | None = None
        if not self.latest:
            typed = self.query_one("#target", Input).value.strip()
            if not typed:
                self._show_refusal("type a point in time (UTC), e.g. "
                                   "2026-01-15T11:30:00Z, or choose latest")
                return
            try:
                target = parse_iso(typed)
            except ValueError as error:
                self._show_refusal(str(error))
                return
        self.query_one("#plan", Static).update(Text("planning…", style="dim"))
        bridge = self.btar_app.bridge

        def plan() -> None:
            try:
                found, (rate, measured) = bridge.call(
                    lambda b: (b.plan_fork(name, region, target), b.fork_throughput()))
            except BtarError as error:
                self.post_message(ForkPlanned(request, None, str(error)))
                return
            self.post_message(ForkPlanned(request, found, "", rate, measured))

        self.target = target
        self._planned_region = region
        workers.start(self, "plan", plan, exclusive=True)

    def on_fork_planned(self, message: ForkPlanned) -> None:
        if message.request != self._request:
            return  # the choice changed since: a newer plan is on its way
        self.plan = message.plan
        if message.plan is None:
            self._show_refusal(message.error)
        else:
            self.query_one("#plan", Static).update(
                plan_text(message.plan, message.throughput, message.measured))
        self._update_run()

    def _show_refusal(self, text: str) -> None:
        self.plan = None
        self.query_one("#plan", Static).update(Text(text, style="bold yellow"))
        self._update_run()

    def _update_run(self) -> None:
        self.query_one("#run", Button).disabled = (self.plan is None or self.running
                                                   or self.summary is not None)

    # -- running -----------------------------------------------------------------------------

    def destination(self) -> Path | None:
        typed = self.query_one("#into", Input).value.strip()
        if not typed:
            return None
        path = Path(typed).expanduser()
        return path if path.is_absolute() else self.btar_app.bridge.config_dir / path

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "run":
            self.run_fork()
        else:
            self.action_cancel()

    def run_fork(self) -> None:
        plan, into = self.plan, self.destination()
        if plan is None:
            return
        if into is None:
            self.notify("choose a folder to restore into", severity="warning")
            return
        self.running = True
        self._update_run()
        for widget_id in ("#fork-region", "#when", "#target", "#into"):
            self.query_one(widget_id).disabled = True
        bar = self.query_one("#fork-bar", ProgressBar)
        bar.display = True
        bar.update(total=len(plan.objects), progress=0)
        name, region, target = self.service, plan.region, self.target
        bridge = self.btar_app.bridge
        command = ["btar", "--config", str(bridge.config_path), "wal-fetch", name, "--region",
                   region]

        def run() -> None:
            outcome = bridge.call(
                lambda b: b.fork(name, region, target, into, wal_fetch_command=command),
                on_fetch=lambda done, total, _: self.post_message(ForkProgressed(done, total)))
            self.post_message(ForkFinished(outcome, into))

        workers.start(self, "fork", run)

    def on_fork_progressed(self, message: ForkProgressed) -> None:
        # on_fetch counts within one fetch batch; each call is one more object fetched.
        self.query_one("#fork-bar", ProgressBar).advance(1)

    def on_fork_finished(self, message: ForkFinished) -> None:
        self.running = False
        outcome = message.outcome
        bar = self.query_one("#fork-bar", ProgressBar)
        bar.update(total=len(outcome.plan.objects), progress=len(outcome.plan.objects))
        self.summary = (
            f"Fork ready: {message.into}\n"
            f"restore point {when_iso(outcome.plan.effective_target)}; fetched "
            f"{outcome.downloaded} objects ({size(outcome.bytes_downloaded)}) in "
            f"{outcome.seconds:.1f}s, {outcome.skipped} already there and verified; "
            f"wrote {', '.join(outcome.written)}")
        # The plan was shown before the run; the outcome now takes its place.
        self.query_one("#plan", Static).update(Text(self.summary, style="green"))
        self._update_run()
        self.query_one("#cancel", Button).focus()

    def on_action_failed(self, message: ActionFailed) -> None:
        if message.action == "fork":
            self.running = False
            for widget_id in ("#fork-region", "#when", "#into"):
                self.query_one(widget_id).disabled = False
            self.query_one("#target", Input).disabled = self.latest
            self.query_one("#plan", Static).update(
                Text(f"fork failed: {message.message}", style="bold red"))
            self._update_run()
        else:
            self._show_refusal(message.message)

    def action_cancel(self) -> None:
        if self.running:
            self.notify("the fork is running; wait for it (if interrupted, run it again into "
                        "the same folder to resume)", severity="warning")
            return
        self.dismiss(self.summary)
