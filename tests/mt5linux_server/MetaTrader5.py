"""Stands in for the Windows `MetaTrader5` package inside a test mt5linux server process.

With this directory first on PYTHONPATH, `python -m mt5linux --host 127.0.0.1 -p PORT` (the pinned
mt5linux's own rpyc classic server) answers the client's `import MetaTrader5 as mt5` with one shared
FakeMetaTrader5 instance. Never on sys.path of the test process itself.
"""

import sys

from tests.fake_mt5 import FakeMetaTrader5

sys.modules[__name__] = FakeMetaTrader5()
