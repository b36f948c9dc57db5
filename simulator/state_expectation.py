"""A scenario's ``state`` expectation against what `btar status` shows: a state (the
engine's ``ServiceState``) and, apart, its reason.

A scenario file keeps one string for it, so that files written before the reason was a field
of its own still read the same:

- ``"paused"``, ``"in sync"``: the state;
- the beginning of the words of states, ``"primary"``: any state that starts so (both
  primary states);
- a state that comes with a reason, a colon and the beginning of the reason,
  ``"paused: aws-eu-central-1"``: that state, with a reason that starts so.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.api import REASONED_STATES, ServiceState

#: the states `btar status` shows, in their words (engine.api.ServiceState)
STATES = tuple(state.value for state in ServiceState)
#: the states followed by ": " and the region and reason when written whole
DETAILED_STATES = tuple(state.value for state in ServiceState if state in REASONED_STATES)


@dataclass(frozen=True)
class ExpectedState:
    """The states an expectation accepts, and the beginning of the reason (None: any)."""

    states: frozenset[ServiceState]
    reason: str | None = None

    def matches(self, state: ServiceState, reason: str) -> bool:
        return state in self.states and (self.reason is None or reason.startswith(self.reason))


def expected_state(text: str) -> ExpectedState:
    """The expectation a scenario's ``state = "..."`` says; ValueError if it names none."""
    head, colon, reason = text.partition(": ")
    if colon and head in DETAILED_STATES:
        return ExpectedState(frozenset({ServiceState(head)}), reason)
    states = frozenset(state for state in ServiceState if state.value.startswith(text))
    if not states:
        raise ValueError(f"unknown state {text!r}; a state starts with one of: "
                         f"{', '.join(STATES)}")
    return ExpectedState(states)
