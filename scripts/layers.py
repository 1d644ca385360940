#!/usr/bin/env python3
"""layers.py — the layering of src/, checked (run by `make check` as the
ctest entry `layers`; docs/architecture.md explains the layers).

Each folder of src/ is one layer.  A file may include headers of its own
folder and of the folders on lower layers, never of a higher one nor of a
folder that is not listed here (a new folder must be given its place).
Headers must not include each other in a loop.

The same run caps sizes: no .c file of src/ over 1,500 lines, and no
function over 100 lines.  A function, for this count, is a heuristic of the
house layout rather than a parse: a line at column 0 that starts a
definition (not a blank, a comment, a preprocessor line nor a brace) and
ends with ')' -- on that line, or on the indented lines after it for a
signature over several lines -- followed by a line that is exactly '{', up
to the next line that is exactly '}'.  Its size runs from the first line of
the signature to the closing brace, both counted.

Exit 0 when the code keeps the rules; otherwise every place that breaks
one, with file, line and size, and exit 1.

  scripts/layers.py [SRC_DIR]
"""
import os
import re
import sys

# Bottom to top.  A folder includes only folders listed before it.
LAYERS = [
    "util",     # errors, memory, logging, files, text, time, the INI reader
    "crypto",   # keys, fingerprints, Noise, AEAD, hashes
    "conf",     # station.conf, cards, who may change a station
    "wire",     # framing and every record's codec: pure (buf, len)
    "item",     # the signed items' field types
    "store",    # SQLite: the only SQL
    "msg",      # signed items' encoding, message content, retention
    "holder",   # the key holder: its requests, journal of heads, process, client
    "chain",    # the chain rules on arrival and in record verify
    "station",  # the station facade: paths, locks, opening; control socket; status; queueing
    "session",  # the session state machine (no socket, no clock)
    "deliver",  # the messages protocol for one peer
    "voice",    # codec, media, jitter buffer, call audio
    "bundle",   # sealed courier bundles
    "mail",     # Maildir pickup, MIME
    "record",   # the record file: export, verify, show
    "daemon",   # the event loop and its services
    "cmd",      # one file per subcommand
    ".",        # main.c
]

FILE_MAX = 1500      # lines of one .c file
FUNCTION_MAX = 100   # lines of one function, signature to closing brace

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def folder_of(path, src):
    d = os.path.relpath(os.path.dirname(path), src)
    return d.split(os.sep)[0]


def sizes(rel, text, bad):
    """Append to BAD each cap that the .c file REL (its TEXT) breaks."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) > FILE_MAX:
        bad.append(f"{rel}:1: file of {len(lines)} lines, over the cap of {FILE_MAX}")
    for i in range(len(lines) - 1):
        if lines[i + 1] != "{" or not lines[i].rstrip().endswith(")"):
            continue
        start = i  # a signature's continuation lines are indented
        while start > 0 and lines[start][:1] in (" ", "\t"):
            start -= 1
        sig = lines[start]
        if not sig or sig[0] in " \t#/*{}":
            continue
        for j in range(i + 2, len(lines)):
            if lines[j] == "}":
                n = j - start + 1
                if n > FUNCTION_MAX:
                    name = re.findall(r"(\w+)\s*\(", sig)
                    name = name[0] if name else sig.strip()
                    bad.append(f"{rel}:{start + 1}: function {name} of {n} lines, "
                               f"over the cap of {FUNCTION_MAX}")
                break


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "src")
    src = os.path.normpath(src)
    rank = {name: i for i, name in enumerate(LAYERS)}
    bad = []
    graph = {}
    for root, _, files in os.walk(src):
        for f in sorted(files):
            if not f.endswith((".c", ".h")):
                continue
            path = os.path.join(root, f)
            rel = os.path.relpath(path, src)
            here = folder_of(path, src)
            if here not in rank:
                bad.append(f"{rel}: folder {here}/ has no place in scripts/layers.py")
                continue
            text = open(path, encoding="utf-8", errors="replace").read()
            if f.endswith(".c"):
                sizes(rel, text, bad)
            graph[rel] = []
            for m in INCLUDE.finditer(text):
                inc = m.group(1)
                line = text.count("\n", 0, m.start()) + 1
                target = inc if "/" in inc else os.path.join(os.path.dirname(rel), inc)
                graph[rel].append((os.path.normpath(target), line))
                there = target.split("/")[0] if "/" in target else "."
                if there not in rank:
                    bad.append(f"{rel}:{line}: includes \"{inc}\" from folder {there}/, "
                               "which has no place in scripts/layers.py")
                elif rank[there] > rank[here]:
                    bad.append(f"{rel}:{line}: includes \"{inc}\": {here}/ is below "
                               f"{there}/ (layer {rank[here] + 1} includes layer {rank[there] + 1})")
    # Include loops among files: depth-first search with colours.
    state = {}

    def visit(node, stack):
        state[node] = 1
        stack.append(node)
        for target, line in graph.get(node, []):
            if target not in graph:
                continue
            if state.get(target) == 1:
                loop = stack[stack.index(target):] + [target]
                bad.append(f"{node}:{line}: include loop: " + " -> ".join(loop))
            elif target not in state:
                visit(target, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    for b in bad:
        print(b)
    if bad:
        print(f"layers: {len(bad)} place(s) break the layering or the size caps of {src}",
              file=sys.stderr)
        return 1
    print(f"layers: {len(graph)} files of {src} keep the layers and the size caps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
