"""Launch engine work in Textual thread workers, turning every failure into a message.

A BtarError becomes :class:`ActionFailed` with ``str(error)`` (what the user can act on);
anything else is a bug, but it still must not tear the screen down with a traceback, so it
is reported the same way, naming the exception type.
"""

from __future__ import annotations

from collections.abc import Callable

from textual.dom import DOMNode
from textual.worker import Worker

from btar_tui.messages import ActionFailed
from engine.errors import BtarError


def guarded(node: DOMNode, action: str, body: Callable[[], object]) -> None:
    """Run ``body``; report failures to ``node`` as ActionFailed."""
    try:
        body()
    except BtarError as error:
        node.post_message(ActionFailed(action, str(error), error.exit_code))
    except Exception as error:
        node.log.error(f"{action} failed", error)
        node.post_message(ActionFailed(action, f"unexpected error: {type(error).__name__}: "
                                               f"{error}"))


def start(node: DOMNode, action: str, body: Callable[[], object], *, group: str | None = None,
          exclusive: bool = False) -> Worker[None]:
    """Run ``body`` in a thread worker owned by ``node`` (cancelled when it goes away)."""
    return node.run_worker(lambda: guarded(node, action, body), name=action, thread=True,
                           group=group or action, exclusive=exclusive, exit_on_error=False)
