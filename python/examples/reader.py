"""The seed's file reader over SharedMemory, on shmbridge.

    python reader.py [OUT] [NAME]      (defaults: result.zip, shm_test)

None of the seed's workarounds are needed: no `del data` before close() (close never
raises BufferError), no resource_tracker.unregister (attaching never removes the segment).
"""

import sys

from shmbridge import SharedMemory

out = sys.argv[1] if len(sys.argv) > 1 else "result.zip"
name = sys.argv[2] if len(sys.argv) > 2 else "shm_test"

shm = SharedMemory(name, create=False)
with open(out, "wb") as file:
    assert shm.buf is not None
    data = shm.buf[:]
    file.write(data)

shm.close()  # `data` still references the memory: fine
print(f"wrote {len(data)} bytes to {out}")
