"""Telegram handlers, one module (and one Router from `make_router()`) per concern.

Command handlers are plain functions registered from `bot.telegram.COMMANDS`; button handlers are
registered by each module's router. Handlers are thin: parse, call the engine or journal, format, reply.
"""
