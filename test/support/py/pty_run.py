"""Run a command in a pseudo-terminal and answer its prompts, like a person at a keyboard.

stdin:  {"argv": [...], "env": {...}, "steps": [{"expect": regex, "send": text}], "timeout": s}
stdout: {"exit": int, "output": str, "unmatched": regex | null}
Each step waits until its regex appears in the output (after the previous match), then types.
"""

import json
import os
import pty
import re
import select
import sys
import time

request = json.load(sys.stdin)
pid, fd = pty.fork()
if pid == 0:
    os.execvpe(request["argv"][0], request["argv"], request["env"])

deadline = time.monotonic() + request.get("timeout", 30)
output = b""
position = 0
unmatched = None


def read_some(wait):
    global output
    ready, _, _ = select.select([fd], [], [], wait)
    if not ready:
        return True
    try:
        chunk = os.read(fd, 65536)
    except OSError:
        return False
    if not chunk:
        return False
    output += chunk
    return True


alive = True
for step in request["steps"]:
    pattern = re.compile(step["expect"].encode())
    while alive:
        match = pattern.search(output, position)
        if match:
            position = match.end()
            time.sleep(0.05)  # let the prompt finish drawing before typing
            os.write(fd, step["send"].encode())
            break
        if time.monotonic() > deadline:
            unmatched = step["expect"]
            alive = False
            break
        alive = read_some(0.1)
    if unmatched or not alive:
        unmatched = unmatched or (None if pattern.search(output, position) else step["expect"])
        break

while time.monotonic() < deadline and read_some(0.1):
    pass
try:
    os.kill(pid, 9) if time.monotonic() >= deadline else None
except ProcessLookupError:
    pass
_, status = os.waitpid(pid, 0)
code = os.waitstatus_to_exitcode(status)
text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output.decode("utf-8", "replace"))
json.dump({"exit": code, "output": text, "unmatched": unmatched}, sys.stdout)
