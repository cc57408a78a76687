"""Run a command in its own process group and kill the whole group when our stdin closes.

The test harness keeps a pipe to our stdin. However the harness ends (normal stop, a failed test,
Ctrl-C, even SIGKILL) the pipe closes, and the MLflow server with all its workers goes with it.
"""

import os
import signal
import subprocess
import sys
import threading

child = subprocess.Popen(sys.argv[1:], start_new_session=True)


def kill_group(*_):
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(child.pid, sig)
        except ProcessLookupError:
            return
        try:
            child.wait(wait)
            return
        except subprocess.TimeoutExpired:
            pass


def watch_stdin():
    while sys.stdin.buffer.read(4096):
        pass
    kill_group()


signal.signal(signal.SIGTERM, lambda *_: (kill_group(), sys.exit(143)))
signal.signal(signal.SIGINT, lambda *_: (kill_group(), sys.exit(130)))
threading.Thread(target=watch_stdin, daemon=True).start()
sys.exit(child.wait())
