#!/usr/bin/python3
"""Writes the virtual disk of a VHD/VHDX as libvhdi (pyvhdi) reads it.

usage: vhdi_read.py OUT IMAGE [PARENT [GRANDPARENT ...]]
The parents are given explicitly, nearest first (libvhdi does not search for them).
"""
import sys
import pyvhdi

out, paths = sys.argv[1], sys.argv[2:]
files = []
for p in paths:
    f = pyvhdi.file()
    f.open(p)
    files.append(f)
for child, parent in zip(files, files[1:]):
    child.set_parent(parent)
top = files[0]
size = top.get_media_size()
with open(out, "wb") as o:
    off = 0
    while off < size:
        n = min(4 << 20, size - off)
        o.write(top.read_buffer_at_offset(n, off))
        off += n
