"""The `magsag` executable: the command goes to the warm process of a standing worker
when one serves it (cli/warm.py), else it runs here."""

import os
import sys

from magsag.cli import warm


def main() -> None:
    code = warm.run(sys.argv)
    if code is None:
        from magsag.cli import app

        code = app.run(sys.argv)
    # The Temporal SDK can abort in PyGILState_Release at interpreter exit: flush and
    # leave without running the interpreter's teardown.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
