"""`python -m tests.support.faketime_main <command>`: exactly `python -m bot <command>`, in a process
started with libfaketime preloaded (tests/support/faketime.py), which keeps it to itself: the
Rasa child process is started without it (TensorFlow hangs loading the model with it preloaded)."""

from __future__ import annotations

import os
import runpy
import sys

kept = [part for part in os.environ.get("LD_PRELOAD", "").split() if "faketime" not in part]
if kept:
    os.environ["LD_PRELOAD"] = " ".join(kept)
else:
    os.environ.pop("LD_PRELOAD", None)
# FAKETIME* stay: the library re-reads them (every 10 s); without the library they do nothing
sys.argv[0] = "bot"
runpy.run_module("bot", run_name="__main__", alter_sys=True)
