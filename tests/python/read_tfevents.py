#!/usr/bin/env python3
"""Reads chestlab's TensorBoard event files the way TensorBoard does, with Python's protobuf.

Usage: read_tfevents.py PB2_DIR TB_ROOT

PB2_DIR holds tensorboard_event_pb2.py (protoc --python_out of
framework/engine/proto/tensorboard_event.proto; the build puts it in <build>/python). TB_ROOT is
a run's event folder, <output>/<experiment>/tb/<run id>, with one folder fold<k> per fold.

Every file whose name contains "tfevents" is read record by record: the masked CRC-32C of the
length and of the data are both checked (with a CRC written here, independent of the C++
writer's Boost.CRC), each record is parsed as an Event, the first one must carry the file
version "brain.Event:2". Prints tab-separated lines:

  file    <fold folder>  <file name>  <records>  <bytes>
  scalar  <fold folder>  <tag>  <step>  <value>  <wall time>
  problem <fold folder>  <file name>  <what>       (a bad record, a missing file version)
  duplicate <fold folder>  <tag>  <step>           (the same tag and step twice in a folder)

Exits 1 when there was a problem or a duplicate, 0 otherwise.
"""
import os
import struct
import sys


def crc32c_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1  # reflected Castagnoli polynomial
        table.append(c)
    return table


TABLE = crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def read_records(path):
    """(records, problem): every good record's data, and why reading stopped early, if it did."""
    with open(path, "rb") as f:
        raw = f.read()
    records, at = [], 0
    while at < len(raw):
        if len(raw) - at < 12:
            return records, f"record at byte {at}: header cut short"
        (length,) = struct.unpack_from("<Q", raw, at)
        (length_crc,) = struct.unpack_from("<I", raw, at + 8)
        if length_crc != masked(raw[at:at + 8]):
            return records, f"record at byte {at}: length CRC mismatch"
        if len(raw) - at - 12 < length + 4:
            return records, f"record at byte {at}: data cut short"
        data = raw[at + 12:at + 12 + length]
        (data_crc,) = struct.unpack_from("<I", raw, at + 12 + length)
        if data_crc != masked(data):
            return records, f"record at byte {at}: data CRC mismatch"
        records.append(data)
        at += 12 + length + 4
    return records, None


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    sys.path.insert(0, sys.argv[1])
    import tensorboard_event_pb2 as pb  # noqa: E402 (generated at build time)

    root = sys.argv[2]
    bad = False
    for fold in sorted(os.listdir(root)):
        folder = os.path.join(root, fold)
        if not os.path.isdir(folder):
            continue
        seen = set()
        for name in sorted(n for n in os.listdir(folder) if "tfevents" in n):
            path = os.path.join(folder, name)
            records, problem = read_records(path)
            print(f"file\t{fold}\t{name}\t{len(records)}\t{os.path.getsize(path)}")
            if problem:
                print(f"problem\t{fold}\t{name}\t{problem}")
                bad = True
            for i, data in enumerate(records):
                event = pb.Event()
                try:
                    event.ParseFromString(data)
                except Exception as e:  # google.protobuf.message.DecodeError
                    print(f"problem\t{fold}\t{name}\trecord {i} does not parse: {e}")
                    bad = True
                    break
                if i == 0:
                    if event.WhichOneof("what") != "file_version" or event.file_version != "brain.Event:2":
                        print(f"problem\t{fold}\t{name}\tthe first record is not the file version brain.Event:2")
                        bad = True
                    continue
                if event.WhichOneof("what") != "summary":
                    print(f"problem\t{fold}\t{name}\trecord {i} holds no summary")
                    bad = True
                    continue
                for value in event.summary.value:
                    if value.WhichOneof("value") != "simple_value":
                        print(f"problem\t{fold}\t{name}\trecord {i}: {value.tag} has no simple_value")
                        bad = True
                        continue
                    key = (value.tag, event.step)
                    if key in seen:
                        print(f"duplicate\t{fold}\t{value.tag}\t{event.step}")
                        bad = True
                    seen.add(key)
                    print(f"scalar\t{fold}\t{value.tag}\t{event.step}\t{value.simple_value!r}\t{event.wall_time!r}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
