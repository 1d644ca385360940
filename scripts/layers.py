#!/usr/bin/env python3
"""layers.py — the layering of src/, checked (run by `make check` as the
ctest entry `layers`; docs/architecture.md explains the layers).

Each folder of src/ is one layer.  A file may include headers of its own
folder and of the folders on lower layers, never of a higher one nor of a
folder that is not listed here (a new folder must be given its place).
Headers must not include each other in a loop.  Exit 0 when the code keeps
the rules; otherwise every include that breaks one, with file and line, and
exit 1.

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
    "chain",    # the chain rules on arrival and in record verify
    "link",     # the session state machine (no socket, no clock)
    "deliver",  # the messages protocol for one peer
    "voice",    # codec, media, jitter buffer, call audio
    "bundle",   # sealed courier bundles
    "mail",     # Maildir pickup, MIME
    "record",   # the record file: export, verify, show
    "daemon",   # the event loop and its services
    "cmd",      # one file per subcommand
    ".",        # main.c
]

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def folder_of(path, src):
    d = os.path.relpath(os.path.dirname(path), src)
    return d.split(os.sep)[0]


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
        print(f"layers: {len(bad)} include(s) break the layering of {src}", file=sys.stderr)
        return 1
    print(f"layers: {len(graph)} files of {src} keep the layers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
