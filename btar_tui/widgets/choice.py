"""A radio button that reads without colour."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import RadioButton


class ChoiceButton(RadioButton):
    """A radio button whose state reads without colour: ``(•)`` chosen, ``( )`` not (the
    stock one draws the same ``▐●▌`` for both and tells them apart by colour only)."""

    # As specific as RadioSet's own rules for its buttons, which they must override.
    DEFAULT_CSS = """
    RadioSet > ChoiceButton > .toggle--button, ChoiceButton > .toggle--button {
        color: $text-muted;
        background: transparent;
    }
    RadioSet > ChoiceButton.-on > .toggle--button, ChoiceButton.-on > .toggle--button {
        color: $text-success;
        background: transparent;
        text-style: bold;
    }
    """

    @property
    def _button(self) -> Content:
        return Content.styled("(•)" if self.value else "( )",
                              self.get_visual_style("toggle--button"))
