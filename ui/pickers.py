"""The sidebar pickers for model A and model B, and the pages' view of what is picked."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st

from core.models.ensemble import ensemble_choices
from core.models.registry import list_models
from ui.display import HOW_TO_GET_MODELS, default_pair, model_keys

MODEL_A, MODEL_B = "model_a", "model_b"


@dataclass
class Selection:
    """The registered models' cards and the names picked as A and B (None when not available)."""

    cards: list[dict[str, Any]]
    a: str | None
    b: str | None

    @property
    def names(self) -> list[str]:
        return [card["name"] for card in self.cards]

    @property
    def registered(self) -> list[dict[str, Any]]:
        """The cards of registered models, without the averages offered beside them."""
        return [card for card in self.cards if "members" not in card]

    @property
    def keys(self) -> tuple[tuple[str, float], ...]:
        """(name, mtime) of A then B, without repeats: the cache key of the loaded models."""
        return model_keys(self.cards, [self.a, self.b])

    def key_of(self, name: str) -> tuple[str, float]:
        """(name, mtime) of any registered model."""
        return next((card["name"], float(card["mtime"])) for card in self.cards if card["name"] == name)


def _settle() -> Selection:
    """Read the registry and make the session's picks valid (defaults when unset or gone)."""
    registered = list_models()
    default_a, default_b = default_pair([card["name"] for card in registered])
    # The average of the default pair is offered as one more model ("baseline+masked").
    cards = registered + ensemble_choices(registered, [default_a, default_b])
    names = [card["name"] for card in cards]
    if st.session_state.get(MODEL_A) not in names:
        st.session_state[MODEL_A] = default_a
    if st.session_state.get(MODEL_B) not in names:
        st.session_state[MODEL_B] = default_b
    return Selection(cards, st.session_state[MODEL_A], st.session_state[MODEL_B])


def model_pickers() -> Selection:
    """Draw the pickers in the sidebar (app.py calls this on every run) and return the picks."""
    selection = _settle()
    schemes = {card["name"]: card.get("scheme", "?") for card in selection.cards}

    def label(name: str) -> str:
        return f"{name} ({schemes.get(name, '?')})"

    with st.sidebar:
        st.subheader("Models")
        if not selection.names:
            st.warning("No model is registered yet.")
            st.caption(HOW_TO_GET_MODELS)
        else:
            st.selectbox("Model A", selection.names, key=MODEL_A, format_func=label)
            if len(selection.names) >= 2:
                st.selectbox("Model B", selection.names, key=MODEL_B, format_func=label)
            else:
                st.caption(
                    "Only one model is registered, so there is nothing to compare yet. " + HOW_TO_GET_MODELS
                )
    return Selection(selection.cards, st.session_state[MODEL_A], st.session_state.get(MODEL_B))


def current() -> Selection:
    """What the sidebar pickers hold, for a page."""
    return _settle()
