#!/usr/bin/env python3
"""include_dirs.py -- which include directories of a build lie under a folder.

    include_dirs.py COMPILE_COMMANDS.json FOLDER

Reads every -I, -isystem and -iquote of every command in a meson/ninja
compile_commands.json, resolves it (relative to the command's directory,
symlinks followed) and prints those that are FOLDER itself or lie inside it
(FOLDER resolved the same way).  Paths are compared component by component,
never as substrings: /src is not inside /tmp/x/src, and /opt/w is not a
parent of /opt/wsync.

Exit status: 0 when at least one include directory lies under FOLDER,
1 when none does, 2 on bad arguments or an unreadable file.
"""
import json
import os
import shlex
import sys

FLAGS = ("-I", "-isystem", "-iquote", "-idirafter")


def include_dirs(entry):
    args = entry.get("arguments") or shlex.split(entry.get("command", ""))
    out = []
    i = 0
    while i < len(args):
        a = args[i]
        for f in FLAGS:
            if a == f and i + 1 < len(args):
                out.append(args[i + 1])
                i += 1
                break
            if a.startswith(f) and len(a) > len(f):
                out.append(a[len(f):])
                break
        i += 1
    base = entry.get("directory", ".")
    return [os.path.realpath(os.path.join(base, d)) for d in out]


def inside(path, folder):
    try:
        return os.path.commonpath([path, folder]) == folder
    except ValueError:  # one absolute, one relative: cannot be inside
        return False


def main(argv):
    if len(argv) != 3:
        print("usage: include_dirs.py COMPILE_COMMANDS.json FOLDER", file=sys.stderr)
        return 2
    try:
        with open(argv[1], encoding="utf-8") as f:
            entries = json.load(f)
    except (OSError, ValueError) as e:
        print(f"include_dirs.py: {argv[1]}: {e}", file=sys.stderr)
        return 2
    folder = os.path.realpath(argv[2])
    hits = sorted({d for e in entries for d in include_dirs(e) if inside(d, folder)})
    for d in hits:
        print(d)
    return 0 if hits else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
