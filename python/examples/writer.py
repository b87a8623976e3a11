"""The seed's file writer over SharedMemory, on shmbridge.

    python writer.py [FILE] [NAME]     (defaults: data.zip, shm_test)

Holds the data until Ctrl-C (or SIGTERM), then closes and removes the segment.
"""

import signal
import sys
import time

from shmbridge import SharedMemory

path = sys.argv[1] if len(sys.argv) > 1 else "data.zip"
name = sys.argv[2] if len(sys.argv) > 2 else "shm_test"
signal.signal(signal.SIGTERM, signal.default_int_handler)

with open(path, "rb") as file:
    data = file.read()
    shm = SharedMemory(name=name, create=True, size=len(data))
    assert shm.buf is not None
    shm.buf[:] = data

try:
    while True:
        print("data available", flush=True)
        time.sleep(3)
except KeyboardInterrupt:
    pass
finally:
    shm.close()
    shm.unlink()  # destroyed in producer
