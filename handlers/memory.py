"""What the handlers remember between updates, one typed holder per concern.

The context (`handlers.services.Services`) carries one of each for the life of the bot, so a button
pressed minutes later finds what the command that posted it left: which message shows an approval,
the pages of a long reply. Nothing here survives a restart, and the handlers say so when asked.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

MessageKey = tuple[int, int]  # (chat id, message id)


@dataclass(slots=True)
class ApprovalMessages:
    """approval id -> (chat id, message id); `claimed`: posted by a handler; `final`: result already shown;
    `cards`: the card's text, so the edit that shows the result keeps its title and figures."""

    where: dict[str, MessageKey] = field(default_factory=dict)
    claimed: set[str] = field(default_factory=set)
    final: set[str] = field(default_factory=set)
    cards: dict[str, str] = field(default_factory=dict)  # the card as first shown (kept when it is edited)


@dataclass(slots=True)
class PagedList:
    pages: list[str]
    shown: int


@dataclass(slots=True)
class PagedLists:
    """Paged replies by the message that shows them, the least recently used first."""

    lists: OrderedDict[MessageKey, PagedList] = field(default_factory=OrderedDict)

    def add(self, key: MessageKey, listed: PagedList, keep: int) -> None:
        """Keep `listed`, and only the newest `keep` lists."""
        self.lists[key] = listed
        while len(self.lists) > keep:
            self.lists.popitem(last=False)

    def get(self, key: MessageKey) -> PagedList | None:
        return self.lists.get(key)

    def touch(self, key: MessageKey) -> None:
        """A page was turned: this list is the last to go."""
        if key in self.lists:
            self.lists.move_to_end(key)

    def clear(self) -> None:
        self.lists.clear()

    def __len__(self) -> int:
        return len(self.lists)
