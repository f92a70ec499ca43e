"""`python -m ipcmap ARGS`: the coordinator with ARGS, its exit status returned."""

import os
import sys

from ._run import coordinator_path


def main():
    path = coordinator_path()
    # Replace this process, so that signals and the exit status are the coordinator's own.
    os.execv(path, [path, *sys.argv[1:]])


if __name__ == "__main__":
    main()
