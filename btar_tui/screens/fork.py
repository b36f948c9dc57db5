"""The fork wizard: pick the region (its own copy is restored there, rule 6), latest or a
point in time validated live against that region's window (rule 5), see the plan, run
exactly that plan with progress, and get a summary of what was laid out where and what to
do next."""

from __future__ import annotations

import re
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, ProgressBar, RadioButton, RadioSet, Select, Static

from btar_tui import workers
from btar_tui.format import duration, when_iso
from btar_tui.messages import (
    ActionFailed,
    ForkFinished,
    ForkProgressed,
    PlanStale,
    WindowsLoaded,
    WizardPlanned,
)
from btar_tui.widgets.choice import ChoiceButton
from engine.api import Btar, ForkOutcome
from engine.errors import BtarError, OutsideWindow
from engine.model import RegionRole, RestoreWindow, parse_iso
from engine.restore import PlanChanged, RestorePlan
from engine.units import byte_size

if TYPE_CHECKING:
    from btar_tui.app import BtarApp


LATEST_HINT = "latest: the end of the region's window"
TIME_HINT = "a time inside the window below, ISO 8601 UTC"
#: how far before the window's end the point-in-time target is suggested
SUGGEST_BEFORE_END = timedelta(minutes=5)
#: the folder prefix `btar demo` gives its temporary world (btar_tui.app.run_demo_tui)
DEMO_PREFIX = "btar-demo-"

_FRACTION = re.compile(r"(\d{2}:\d{2}:\d{2})\.\d+")


def plain_words(message: str) -> str:
    """An engine message as the wizard shows it: times to the second, no CLI flags."""
    message = _FRACTION.sub(r"\1", message)
    return message.replace("--latest", "the latest point")


def _ceil_second(moment: datetime) -> datetime:
    whole = moment.replace(microsecond=0)
    return whole if whole == moment else whole + timedelta(seconds=1)


def window_text(window: RestoreWindow) -> str:
    """The restorable intervals to the second, each shown inside itself (start rounded up,
    end down), so that a time copied from it is restorable."""
    if not window.intervals:
        return "nothing restorable yet"
    return ", ".join(f"{when_iso(_ceil_second(r.start))} .. {when_iso(r.end)}"
                     for r in window.intervals)


def suggested_target(window: RestoreWindow) -> str | None:
    """A point in time inside the window, typed as a user would: a few minutes before its end
    on a whole minute if that is restorable, else the nearest whole second that is."""
    end = window.end
    if end is None:
        return None
    early = end - SUGGEST_BEFORE_END
    for moment in (early.replace(second=0, microsecond=0), early.replace(microsecond=0),
                   end.replace(microsecond=0)):
        if window.covers(moment):
            return when_iso(moment)
    return None


def refusal_text(error: BtarError, window: RestoreWindow | None) -> str:
    """Why there is no plan, with the window (to the second) when the target is outside."""
    if isinstance(error, OutsideWindow) and window is not None:
        return (f"refused by rule 5: {plain_words(error.target)} is outside the restorable "
                f"window of {error.region} ({window_text(window)}); pick a time inside it or "
                "choose the latest point")
    return plain_words(str(error))


def temporary_demo_world(config_dir: Path) -> Path | None:
    """The temporary folder of `btar demo` (deleted with everything in it when it quits), if
    this configuration lives in one."""
    folder = config_dir.resolve()
    if folder.name.startswith(DEMO_PREFIX) \
            and folder.parent == Path(tempfile.gettempdir()).resolve():
        return folder
    return None


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
    text.append(f"to fetch     {len(plan.objects)} objects, {byte_size(plan.bytes_total)}\n")
    seconds = plan.bytes_total / throughput if throughput > 0 else 0.0
    basis = "measured on earlier forks" if measured else "assumed, none measured yet"
    estimate = "under a second" if seconds < 1 else duration(seconds)
    text.append(f"estimate     {estimate} at {byte_size(int(throughput))}/s ({basis})")
    if plan.expected_data_loss_seconds is not None:
        text.append(f"\ndata loss    {duration(plan.expected_data_loss_seconds)} behind the "
                    "primary's latest point")
    return text


def result_text(outcome: ForkOutcome, into: Path, demo_world: Path | None) -> Text:
    """What the run did, against the plan that was confirmed, and what to do next."""
    plan = outcome.plan
    text = Text()
    text.append(f"Fork ready in {into}\n", style="bold green")
    point = "the latest point when planned" if plan.target is None else "the chosen point"
    text.append(f"restored to {when_iso(plan.effective_target)} ({point}) in {plan.region}, "
                "as planned\n")
    planned, ran = outcome.planned_objects, len(plan.objects)
    extra = f" + {ran - planned} the backup needs to become consistent" if ran > planned \
        else ""
    text.append(f"objects: {outcome.downloaded + outcome.skipped} of {planned} planned{extra}, "
                f"{outcome.downloaded} fetched ({byte_size(outcome.bytes_downloaded)}) in "
                f"{outcome.seconds:.1f}s, {outcome.skipped} already there and verified\n")
    text.append(f"wrote {', '.join(outcome.written) or 'nothing'}")
    if outcome.next_steps:
        text.append("\n\nNext steps", style="bold")
        for step in outcome.next_steps:
            text.append(f"\n• {plain_words(step)}")
    if demo_world is not None and into.resolve().is_relative_to(demo_world):
        text.append(f"\n\nbtar demo deletes its temporary world {demo_world}, this fork "
                    "included, when you quit; to keep forks, run the demo in a folder of "
                    "your own: btar demo --dir DIR", style="yellow")
    return text


class ForkWizard(ModalScreen[str | None]):
    """Plan and run a fork of one service; dismisses with a one-line summary once done."""

    BINDINGS = [Binding("escape", "cancel", "Close")]
    DEFAULT_CSS = """
    ForkWizard #fork-window {
        display: none;
        height: auto;
    }
    ForkWizard.-point-in-time #fork-window {
        display: block;
    }
    ForkWizard.-done .fork-form, ForkWizard.-done #fork-window {
        display: none;
    }
    """

    def __init__(self, service: str) -> None:
        super().__init__(classes="dialog-screen")
        self.service = service
        #: the plan shown, the one the Fork button (or Enter) runs
        self.plan: RestorePlan | None = None
        self.target: datetime | None = None
        self.running = False
        self.summary: str | None = None
        #: the restorable window of each region, as last read
        self.windows: dict[str, RestoreWindow] = {}
        self._request = 0
        self._planned_region: str | None = None
        self._throughput = (0.0, False)
        #: the target the wizard suggested (replaced when the region changes, unless edited)
        self._suggested = ""

    @property
    def btar_app(self) -> BtarApp:
        return cast("BtarApp", self.app)

    def default_destination(self) -> str:
        return f"forks/{self.service}-{self.btar_app.bridge.now():%Y%m%dT%H%M%SZ}"

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="fork-dialog"):
            yield Label(f"Fork [b]{self.service}[/b]  [dim](a copy restores only where it is "
                        "stored, inside its window)[/dim]", classes="dialog-title")
            with Horizontal(classes="field fork-form", id="region-row"):
                yield Label("Region", classes="field-label")
                yield Label("loading the regions…", id="region-loading")
            with Horizontal(classes="field fork-form"):
                yield Label("When", classes="field-label")
                with RadioSet(id="when", compact=True):
                    yield ChoiceButton("latest", value=True, id="latest")
                    yield ChoiceButton("point in time (UTC)", id="pitr")
            with Horizontal(classes="field fork-form"):
                yield Label("Target", classes="field-label")
                yield Input(placeholder=LATEST_HINT, id="target", disabled=True, compact=True)
            yield Static("", id="fork-window", classes="dialog-hint field-hint fork-form")
            yield Static("", id="plan")
            with Horizontal(classes="field fork-form"):
                yield Label("Into", classes="field-label")
                yield Input(self.default_destination(), id="into", compact=True)
            yield Static("relative to the configuration's folder; running again resumes",
                         classes="dialog-hint field-hint fork-form")
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
        self.windows = {w.region: w for w in message.windows}
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
        self._show_window()
        self.replan()

    # -- choosing ----------------------------------------------------------------------------

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
            self._show_window()
            self._suggest_target()
            self.replan()

    def on_radio_set_changed(self, event: RadioSet.Changed) -> None:
        target = self.query_one("#target", Input)
        target.disabled = self.latest
        target.placeholder = LATEST_HINT if self.latest else TIME_HINT
        self.set_class(not self.latest, "-point-in-time")
        if not self.latest:
            # The window right away, and a time inside it to start from (issue 20).
            self._show_window()
            self._suggest_target()
            target.focus()
        self.replan()

    def _show_window(self) -> None:
        region = self.chosen_region
        window = self.windows.get(region) if region else None
        text = "" if window is None else f"restorable {window_text(window)}"
        self.query_one("#fork-window", Static).update(text)

    def _suggest_target(self) -> None:
        """Pre-fill the target inside the chosen region's window, unless the user typed one."""
        if self.latest:
            return
        target = self.query_one("#target", Input)
        if target.value.strip() not in ("", self._suggested):
            return
        region = self.chosen_region
        window = self.windows.get(region) if region else None
        suggestion = suggested_target(window) if window is not None else None
        if suggestion is not None and suggestion != target.value:
            self._suggested = suggestion
            target.value = suggestion

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "target":
            self.replan()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter does what the Fork button does with the plan shown; without one, it plans."""
        event.stop()
        if self.running or self.summary is not None:
            return
        if self.plan is not None:
            self.run_fork()
        else:
            self.replan()

    # -- planning ----------------------------------------------------------------------------

    def replan(self) -> None:
        """Validate the choice now: a bad time is refused here, a time outside the window
        by the engine (rule 5), and the refusal replaces the plan."""
        self._request += 1
        request, region, name = self._request, self.chosen_region, self.service
        self.plan = None
        self._update_run()
        if region is None or self.running or self.summary is not None:
            return
        target: datetime | None = None
        if not self.latest:
            typed = self.query_one("#target", Input).value.strip()
            if not typed:
                self._show_refusal("type a point in time (UTC) inside the window, or choose "
                                   "latest")
                return
            try:
                target = parse_iso(typed)
            except ValueError as error:
                self._show_refusal(str(error))
                return
        self.query_one("#plan", Static).update(Text("planning…", style="dim"))
        bridge = self.btar_app.bridge

        def work(b: Btar) -> WizardPlanned:
            window = b.window(name, region)
            try:
                found = b.plan_fork(name, region, target)
            except BtarError as error:
                return WizardPlanned(request, window, None, refusal_text(error, window))
            return WizardPlanned(request, window, found, "", *b.fork_throughput())

        self.target = target
        self._planned_region = region
        workers.start(self, "plan", lambda: self.post_message(bridge.call(work)),
                      exclusive=True)

    def on_wizard_planned(self, message: WizardPlanned) -> None:
        self.windows[message.window.region] = message.window
        if message.request != self._request:
            return  # the choice changed since: a newer plan is on its way
        self._show_window()
        if message.plan is None:
            self._show_refusal(message.refusal)
            return
        self._throughput = (message.throughput, message.measured)
        self._show_plan(message.plan)

    def _show_plan(self, plan: RestorePlan, before: Text | None = None) -> None:
        self.plan = plan
        text = Text() if before is None else before
        text.append_text(plan_text(plan, *self._throughput))
        self.query_one("#plan", Static).update(text)
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

    def _set_form_enabled(self, enabled: bool) -> None:
        for widget_id in ("#fork-region", "#when", "#into"):
            self.query_one(widget_id).disabled = not enabled
        self.query_one("#target", Input).disabled = not enabled or self.latest

    def run_fork(self) -> None:
        """Run the plan shown, frozen: the engine checks it still holds and runs exactly it."""
        plan, into = self.plan, self.destination()
        if plan is None:
            return
        if into is None:
            self.notify("choose a folder to restore into", severity="warning")
            return
        self.running = True
        self._update_run()
        self._set_form_enabled(False)
        bar = self.query_one("#fork-bar", ProgressBar)
        bar.display = True
        bar.update(total=len(plan.objects), progress=0)
        name, region = self.service, plan.region
        bridge = self.btar_app.bridge
        command = ["btar", "--config", str(bridge.config_path), "wal-fetch", name, "--region",
                   region]

        def run() -> None:
            try:
                outcome = bridge.call(
                    lambda b: b.fork(name, region, plan.target, into, plan=plan,
                                     wal_fetch_command=command),
                    on_fetch=lambda done, total, _: self.post_message(
                        ForkProgressed(done, total)))
            except PlanChanged as error:
                window = bridge.call(lambda b: b.window(name, region))
                self.post_message(PlanStale(error, window))
                return
            self.post_message(ForkFinished(outcome, into))

        workers.start(self, "fork", run)

    def on_fork_progressed(self, message: ForkProgressed) -> None:
        # on_fetch counts within one fetch batch; each call is one more object fetched.
        self.query_one("#fork-bar", ProgressBar).advance(1)

    def on_plan_stale(self, message: PlanStale) -> None:
        """Say that the confirmed plan no longer holds and show the new one (or the refusal)
        to confirm again: never run another plan than the one shown."""
        self.running = False
        self._set_form_enabled(True)
        self.query_one("#fork-bar", ProgressBar).display = False
        error = message.error
        self.windows[message.window.region] = message.window
        self._show_window()
        head = Text(f"The plan you confirmed no longer holds: {plain_words(error.reason)}. "
                    "Nothing was fetched.\n", style="bold yellow")
        replacement = error.replacement
        if replacement is None:
            refusal = error.refusal
            head.append(refusal_text(refusal, message.window) if refusal is not None
                        else "no plan can be made now", style="bold yellow")
            self.plan = None
            self.query_one("#plan", Static).update(head)
            self._update_run()
            return
        head.append("New plan, Fork runs this one:\n", style="bold")
        self._show_plan(replacement, head)
        self.query_one("#run", Button).focus()

    def on_fork_finished(self, message: ForkFinished) -> None:
        self.running = False
        outcome, into = message.outcome, message.into
        done = len(outcome.plan.objects)
        self.query_one("#fork-bar", ProgressBar).update(total=done, progress=done)
        self.summary = (f"fork of {self.service} to {when_iso(outcome.plan.effective_target)} "
                        f"ready in {into}")
        # The plan was shown before the run; the outcome and the next steps take its place,
        # and the form (what was chosen is in the outcome) makes room for them.
        self.add_class("-done")
        demo_world = temporary_demo_world(self.btar_app.bridge.config_dir)
        self.query_one("#plan", Static).update(result_text(outcome, into, demo_world))
        self._update_run()
        self.query_one("#cancel", Button).focus()

    def on_action_failed(self, message: ActionFailed) -> None:
        if message.action == "fork":
            self.running = False
            self._set_form_enabled(True)
            self.query_one("#plan", Static).update(
                Text(f"fork failed: {plain_words(message.message)}", style="bold red"))
            self._update_run()
        else:
            self._show_refusal(plain_words(message.message))

    def action_cancel(self) -> None:
        if self.running:
            self.notify("the fork is running; wait for it (if interrupted, run it again into "
                        "the same folder to resume)", severity="warning")
            return
        self.dismiss(self.summary)
