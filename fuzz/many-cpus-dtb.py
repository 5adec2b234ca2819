#!/usr/bin/env python3
"""Writes a DTB of N CPU nodes, each naming an OPP table (phandle) that does not exist.

A seed for the fdt_gate fuzz target (fuzz/run-all.sh): a gate that resolves each
CPU's phandle by scanning every node is quadratic on it, and this seed alone then
exceeds the fuzzer's per-input timeout.

usage: many-cpus-dtb.py N OUT.dtb"""
import struct, sys
n = int(sys.argv[1]); out = sys.argv[2]
strings = b""
offs = {}
def s(name):
    global strings
    if name not in offs:
        offs[name] = len(strings); strings += name.encode() + b"\0"
    return offs[name]
st = bytearray()
def u(v): st.extend(struct.pack(">I", v))
def pad():
    while len(st) % 4: st.append(0)
def begin(name): u(1); st.extend(name.encode() + b"\0"); pad()
def prop(name, val): u(3); u(len(val)); u(s(name)); st.extend(val); pad()
def end(): u(2)
begin("")
prop("compatible", b"friendlyelec,nanopi-m6\0rockchip,rk3588s\0")
begin("cpus")
for i in range(n):
    begin("cpu@%x" % i)
    prop("device_type", b"cpu\0")
    prop("operating-points-v2", struct.pack(">I", 0x7fffffff))
    end()
end()
end()
u(9)
hdr = 40; rsv = 16
off_struct = hdr + rsv; off_strings = off_struct + len(st)
total = off_strings + len(strings)
blob = struct.pack(">10I", 0xd00dfeed, total, off_struct, off_strings, hdr, 17, 16, 0, len(strings), len(st)) + b"\0"*16 + bytes(st) + strings
open(out, "wb").write(blob)
print(len(blob))
