"""Several charts as one album (Telegram's sendMediaGroup): one swipe on a phone instead of a stack of photos.

The caption goes on the first photo, which Telegram shows under the album. One chart is sent as a
plain photo (an album needs two to ten).
"""

from __future__ import annotations

from collections.abc import Sequence

from aiogram import Bot
from aiogram.types import BufferedInputFile, InputMediaPhoto, MediaUnion, Message

MAX_ALBUM = 10

Chart = tuple[bytes, str]  # PNG bytes, file name


def album(charts: Sequence[Chart], caption: str = "") -> list[MediaUnion]:
    """The media of one album: every chart a photo, the caption (HTML) on the first."""
    if not 2 <= len(charts) <= MAX_ALBUM:
        raise ValueError(f"an album holds 2 to {MAX_ALBUM} photos, got {len(charts)}")
    return [
        InputMediaPhoto(
            media=BufferedInputFile(png, name),
            caption=caption if i == 0 and caption else None,
            parse_mode="HTML" if i == 0 and caption else None,
        )
        for i, (png, name) in enumerate(charts)
    ]


async def send_charts(bot: Bot, chat_id: int, charts: Sequence[Chart], caption: str = "") -> list[Message]:
    """The charts that are there (empty PNGs left out) as one album, or one photo; the messages sent."""
    charts = [(png, name) for png, name in charts if png]
    if not charts:
        return []
    if len(charts) == 1:
        png, name = charts[0]
        return [
            await bot.send_photo(
                chat_id,
                BufferedInputFile(png, name),
                caption=caption or None,
                parse_mode="HTML" if caption else None,
            )
        ]
    return list(await bot.send_media_group(chat_id, album(charts[:MAX_ALBUM], caption)))
