#!/usr/bin/env python3
"""Dump a hive with regipy (from PyPI) as JSON Lines, normalised so that it can be compared
with guestwall's reading: one {"key"} record per key and one {"key", "value", "type", "norm"}
record per value, depth first, in stored order.

regipy decodes data by type; "norm" is what it decoded, made comparable:
  REG_DWORD, REG_QWORD         -> integer
  REG_SZ, REG_EXPAND_SZ         -> string (regipy strips trailing NULs)
  REG_MULTI_SZ                  -> list of the non-empty strings
  REG_BINARY, REG_NONE          -> lowercase hex of the bytes
  anything else                 -> null (only the type is compared)

Usage: python regipy_dump.py HIVE
"""
import binascii
import json
import sys

from regipy.registry import RegistryHive


def norm(v):
    t, x = v.value_type, v.value
    if t in ("REG_DWORD", "REG_QWORD"):
        return x
    if t in ("REG_SZ", "REG_EXPAND_SZ"):
        return x if isinstance(x, str) else None
    if t == "REG_MULTI_SZ":
        return list(x)
    if t in ("REG_BINARY", "REG_NONE"):
        return binascii.b2a_hex(bytes(x)).decode() if isinstance(x, (bytes, bytearray)) else x
    return None


def main():
    h = RegistryHive(sys.argv[1])
    out = sys.stdout
    stack = [(h.root, "")]
    while stack:
        nk, path = stack.pop()
        out.write(json.dumps({"key": path}, ensure_ascii=False) + "\n")
        for v in nk.iter_values(trim_values=False) or []:
            name = "" if v.name == "(default)" else v.name
            out.write(json.dumps({"key": path, "value": name, "type": str(v.value_type), "norm": norm(v)}, ensure_ascii=False) + "\n")
        children = list(nk.iter_subkeys() or [])
        for c in reversed(children):
            stack.append((c, path + "\\" + c.name if path else c.name))


if __name__ == "__main__":
    main()
