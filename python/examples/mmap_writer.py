"""The seed's mmap file transfer writer (size-prefixed), on shmbridge.

    python mmap_writer.py DATA [--file PATH | --segment NAME]

--file PATH (default /tmp/shm_test): the seed's Linux version, an 8-byte length then the data
in a mapped file. --segment NAME: the seed's Windows version (a named mapping), here a named
shared-memory segment. Holds the data until Ctrl-C or SIGTERM, then removes it.
"""

import argparse
import os
import signal
import time

import shmbridge

parser = argparse.ArgumentParser()
parser.add_argument("data", nargs="?", default="data.zip")
group = parser.add_mutually_exclusive_group()
group.add_argument("--file", default=None)
group.add_argument("--segment", default=None)
args = parser.parse_args()
signal.signal(signal.SIGTERM, signal.default_int_handler)

with open(args.data, "rb") as file:
    data = file.read()

path = args.file or "/tmp/shm_test"
if args.segment:
    seg = shmbridge.create_size_prefixed(args.segment, data)
else:
    with open(path, "wb") as f:
        f.truncate(shmbridge.SIZE_PREFIX_LEN + len(data))
    mapping = shmbridge.map_file(path, "w")
    shmbridge.write_size_prefixed(mapping, data)  # the length, then the data
    mapping.flush()


def remove() -> None:
    if args.segment:
        seg.unlink()
    else:
        os.remove(path)


try:
    while True:
        print("data available", flush=True)
        time.sleep(3)
except KeyboardInterrupt:
    pass
finally:
    remove()
