"""The seed's program1.py, on shmbridge: creates "MyMemory" and prints it until Ctrl-C.

    python program1.py [NAME] [INTERVAL]
"""

import struct
import sys
import time

from shmbridge import SharedMemory

name = sys.argv[1] if len(sys.argv) > 1 else "MyMemory"
interval = float(sys.argv[2]) if len(sys.argv) > 2 else 3.0

shm = SharedMemory(name=name, size=1024, create=True)
assert shm.buf is not None
# default shm.buf all is 0
shm.buf[0] = 128  # Byte data 0~255
# 4 bytes
shm.buf[4:8] = struct.pack("i", -1)  # int32 use struct
shm.buf[8:12] = struct.pack("I", 1)  # uint32 use struct
shm.buf[12:16] = struct.pack("f", 2.0)  # float32 use struct

try:
    while True:
        print(shm.buf[0], end=",")
        print(shm.buf[1], end=",")
        print(shm.buf[2], end=",")
        print(shm.buf[3], end=",")
        print(struct.unpack("i", shm.buf[4:8])[0], end=",")
        print(struct.unpack("I", shm.buf[8:12])[0], end=",")
        # shmbridge's typed fields read the same bytes without slicing:
        print(round(shm.get("f32", 12), 3), flush=True)

        time.sleep(interval)
except KeyboardInterrupt:
    shm.close()
    shm.unlink()
