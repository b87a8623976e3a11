"""The seed's mmap file transfer reader (size-prefixed), on shmbridge.

    python mmap_reader.py OUT [--file PATH | --segment NAME]

No map-the-header-then-remap dance: the mapping has the real size, and the length prefix is
checked against it (a short file raises shmbridge.Truncated instead of reading garbage).
"""

import argparse

import shmbridge

parser = argparse.ArgumentParser()
parser.add_argument("out", nargs="?", default="result.zip")
group = parser.add_mutually_exclusive_group()
group.add_argument("--file", default=None)
group.add_argument("--segment", default=None)
args = parser.parse_args()

if args.segment:
    source = shmbridge.Segment(args.segment, readonly=True).mapping
else:
    source = shmbridge.map_file(args.file or "/tmp/shm_test")

with source:
    data = shmbridge.read_size_prefixed(source, copy=False)  # zero-copy view of the payload
    with open(args.out, "wb") as file:
        file.write(data)
print(f"wrote {len(data)} bytes to {args.out}")
