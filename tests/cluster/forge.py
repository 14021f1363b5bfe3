#!/usr/bin/env python3
"""Forges what a hostile user can write, for the cluster tests: node store
records with valid CRC32C checksums, and persistent-tier MANIFESTs.

  forge.py record STORE SLOT OFFSET CAPACITY PAYLOAD [VERSION]
  forge.py manifest FILE VERSION SHARD_BYTES...
"""
import struct
import sys

HEADER_BYTES = 4096
RECORD_BYTES = 128
COMMITTED = 3


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def record(store, slot, offset, capacity, payload, version=99):
    # SlotRecord (runtime/store/store_format.hpp): offset, capacity, state,
    # rank, world, nregions, version, payload_bytes, payload_crc, kind, seq,
    # job_id, writer, reserved[48], record_crc.
    body = struct.pack("<QQIIIIQQIIQQI48s", offset, capacity, COMMITTED, 0, 1, 1, version, payload, 0, 0, 1, 0, 0,
                       b"")
    with open(store, "r+b") as f:
        f.seek(HEADER_BYTES + slot * RECORD_BYTES)
        f.write(body + struct.pack("<I", crc32c(body)))


def manifest(path, version, shard_bytes):
    text = "tierckpt-persist 1\nversion %d\nworld %d\njob 1\nwritten 2026-01-01T00:00:00Z\n" % (
        version, len(shard_bytes))
    for rank, n in enumerate(shard_bytes):
        text += "shard %d bytes %d crc32c 00000000\n" % (rank, n)
    text += "end crc32c %08x\n" % crc32c(text.encode())
    with open(path, "w") as f:
        f.write(text)


def main(argv):
    if len(argv) >= 6 and argv[1] == "record":
        record(argv[2], *(int(a) for a in argv[3:]))
    elif len(argv) >= 5 and argv[1] == "manifest":
        manifest(argv[2], int(argv[3]), [int(a) for a in argv[4:]])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
