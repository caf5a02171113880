"""Runs the reference spalloc server (PyPI spalloc-server 1!7.0.0) on a machine with no
SpiNNaker hardware, with three changes made from outside (its code is not modified):

- `version` answers 6.0.0: the reference tools parse the server's own "1!7.0.0" with int() and
  fail. SPALLOC_FAKE_VERSION sets another answer; SPALLOC_FAKE_VERSION="" keeps 1!7.0.0.
- SIGTERM, like SIGINT, raises KeyboardInterrupt, which the server handles by stopping cleanly
  (saving its state); started in the background by a script, it would otherwise ignore SIGINT
  and die on SIGTERM without saving.
- SPALLOC_POWER_ON_SLEEP (seconds; SpiNNMan waits 5 after each power-on for real boards to
  boot) and SPALLOC_RETRY_SLEEP (seconds; 15 before a failed BMP batch is tried again) shorten
  those waits. What is sent to the BMPs is unchanged.

Arguments are the server's own: CONFIG [--port N] [--cold-start] [-q]. Run it with the python
of the server venv that compat/reference/setup.sh makes.
"""
import os
import signal
import sys

import spalloc_server.async_bmp_controller
import spalloc_server.server
import spinnman.transceiver


def patch_from_environment():
    version = os.environ.get("SPALLOC_FAKE_VERSION", "6.0.0")
    if version:
        # The `version` command returns this module's global.
        spalloc_server.server.__version__ = version
    power_on = os.environ.get("SPALLOC_POWER_ON_SLEEP")
    if power_on:
        spinnman.transceiver.BMP_POST_POWER_ON_SLEEP_TIME = float(power_on)
    retry = os.environ.get("SPALLOC_RETRY_SLEEP")
    if retry:
        spalloc_server.async_bmp_controller._SECONDS_BETWEEN_TRIES = float(retry)


if __name__ == "__main__":
    patch_from_environment()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.default_int_handler)
    sys.exit(spalloc_server.server.main())
