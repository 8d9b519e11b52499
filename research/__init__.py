"""Research commands: backtest, walk-forward and what follows (download, optimise).

They drive the engine in `trading/` and the models in `models/` from the command line; the live
bot in `bot/` never imports them, and `trading/` knows nothing of them.
"""
