"""The seed's program2.py, on shmbridge: attaches to "MyMemory" and changes it.

    python program2.py [NAME]

Unlike the stdlib on 3.8-3.13, attaching and exiting never removes program1's segment.
"""

import struct
import sys

from shmbridge import SharedMemory

name = sys.argv[1] if len(sys.argv) > 1 else "MyMemory"
shm = SharedMemory(name=name, create=False)
assert shm.buf is not None

# modify data
shm.buf[1] = 127
shm.buf[2] = 255
# shm.buf[3] = 256  # error (ValueError), as with the stdlib
shm.buf[4:8] = struct.pack("i", -128)
shm.set("u32", 8, 6666)  # same as shm.buf[8:12] = struct.pack("I", 6666)
shm.buf[12:16] = struct.pack("f", 1.414)

shm.close()
