#!/usr/bin/python3
"""Dump a hive with hivex (Debian's python3-hivex) in guestwall's `hive dump` JSON Lines format.

Used by the test suite as an independent reader: one {"key": path} record per key and one
{"key", "value", "type", "data"} record per value, depth first, subkeys and values in stored
order. Key paths are relative to the root key and joined with a backslash.

Usage: /usr/bin/python3 hivex_dump.py HIVE
"""
import json
import sys

import hivex


def main():
    h = hivex.Hivex(sys.argv[1])
    out = sys.stdout
    stack = [(h.root(), "")]
    seen = set()
    while stack:
        node, path = stack.pop()
        # Like hivex's own visitor (hivex_visit), a key reached twice is an error (ELOOP).
        if node in seen:
            sys.exit("node %#x reached twice at %r" % (node, path))
        seen.add(node)
        out.write(json.dumps({"key": path}, ensure_ascii=False, separators=(",", ":")) + "\n")
        for v in h.node_values(node):
            t, data = h.value_value(v)
            rec = {"key": path, "value": h.value_key(v), "type": t, "data": data.hex()}
            out.write(json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n")
        children = h.node_children(node)
        for c in reversed(children):
            name = h.node_name(c)
            stack.append((c, path + "\\" + name if path else name))


if __name__ == "__main__":
    main()
