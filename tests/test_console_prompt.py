"""The console's prompt line: typed lines reach the dispatcher, reports print above the prompt."""

from __future__ import annotations

import asyncio

from prompt_toolkit.application import create_app_session
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from bot.console import ConsoleController


class _Recorder(ConsoleController):
    def __init__(self) -> None:  # no dispatcher: only the prompt loop is under test
        self.lines: list[str] = []
        self._task = None
        self.on_interrupt = None
        self._command = None

    async def handle_line(self, line: str) -> None:
        self.lines.append(line)
        print(f"report for {line}")  # printed while the prompt is up: goes above it, not into it


async def test_prompt_reads_lines_and_stops_on_end_of_input() -> None:
    controller = _Recorder()
    with create_pipe_input() as pipe, create_app_session(input=pipe, output=DummyOutput()):
        task = asyncio.create_task(controller._prompt())
        pipe.send_text("/status\r")
        pipe.send_text("/positions\r")
        for _ in range(100):
            if len(controller.lines) == 2:
                break
            await asyncio.sleep(0.02)
        pipe.send_bytes(b"\x04")  # Ctrl-D on an empty line ends the prompt loop
        await asyncio.wait_for(task, 5)
    assert controller.lines == ["/status", "/positions"]


async def test_prompt_stops_when_cancelled() -> None:
    controller = _Recorder()
    with create_pipe_input() as pipe, create_app_session(input=pipe, output=DummyOutput()):
        controller._task = asyncio.create_task(controller._prompt())
        await asyncio.sleep(0.05)
        await controller.stop()
    assert controller._task is None


async def test_ctrl_c_at_the_prompt_calls_the_stop_once_per_press_and_keeps_the_prompt() -> None:
    """Ctrl-C is a key in the prompt's raw mode: each press is one call of the app's stop (the first
    stops, the second exits), never a loop of re-raised interrupts."""
    controller = _Recorder()
    presses: list[int] = []
    controller.on_interrupt = lambda: presses.append(1)
    with create_pipe_input() as pipe, create_app_session(input=pipe, output=DummyOutput()):
        task = asyncio.create_task(controller._prompt())
        pipe.send_bytes(b"\x03")
        await asyncio.sleep(0.3)
        assert presses == [1] and not task.done()
        pipe.send_bytes(b"\x03")
        pipe.send_text("/status\r")  # the prompt still reads lines while the bot stops
        for _ in range(100):
            if controller.lines:
                break
            await asyncio.sleep(0.02)
        pipe.send_bytes(b"\x04")
        await asyncio.wait_for(task, 5)
    assert presses == [1, 1] and controller.lines == ["/status"]


async def test_stop_lets_a_typed_command_finish_instead_of_cancelling_it() -> None:
    """A stop while /status reads the journal: the reply completes, no query is cut (a cancelled
    query hands its connection back to the pool with a CancelledError)."""

    class Slow(_Recorder):
        async def handle_line(self, line: str) -> None:
            await asyncio.sleep(0.3)  # a journal query
            self.lines.append(line)

    controller = Slow()
    with create_pipe_input() as pipe, create_app_session(input=pipe, output=DummyOutput()):
        controller._task = asyncio.create_task(controller._prompt())
        pipe.send_text("/status\r")
        await asyncio.sleep(0.1)
        await controller.stop()
    assert controller.lines == ["/status"] and controller._task is None
