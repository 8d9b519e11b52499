"""Coloured buttons: Bot API 9.4's `style` on an inline button ("success" green, "danger" red, "primary" blue).

aiogram 3.31 carries the field; with an aiogram that does not (STYLED False), the colour is said
with an emoji before the text instead (✅ / ❌ / 🔷). Telegram apps too old to know the field show a
plain button, whose text still says what it does.
"""

from __future__ import annotations

from typing import Literal

from aiogram.types import InlineKeyboardButton

Style = Literal["success", "danger", "primary"]
STYLED = "style" in InlineKeyboardButton.model_fields
FALLBACK_EMOJI: dict[str, str] = {"success": "✅", "danger": "❌", "primary": "🔷"}


def styled_button(text: str, callback_data: str, style: Style) -> InlineKeyboardButton:
    """A callback button in the colour of `style` (or with its emoji where the field is unknown)."""
    if STYLED:
        return InlineKeyboardButton(text=text, callback_data=callback_data, style=style)
    return InlineKeyboardButton(text=f"{FALLBACK_EMOJI[style]} {text}", callback_data=callback_data)
