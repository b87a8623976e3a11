"""The seed's shared_memory example, on shmbridge: only the import changes."""

import sys
import time
from multiprocessing import Process

from shmbridge import shared_memory

DELAY = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0


def modify(buf_name: str) -> None:
    print("process modify buf", flush=True)
    time.sleep(DELAY)
    shm = shared_memory.SharedMemory(buf_name)
    assert shm.buf is not None
    shm.buf[0:50] = b"b" * 50
    shm.close()


if __name__ == "__main__":
    shm = shared_memory.SharedMemory(create=True, size=100)
    print(f"random memory name={shm.name}")  # memory name=psm_f4d632c3fb

    try:
        assert shm.buf is not None
        shm.buf[0:100] = b"a" * 100
        proc = Process(target=modify, args=(shm.name,))
        proc.start()
        proc.join()
        print(bytes(shm.buf[:100]))
    finally:
        shm.close()
        shm.unlink()
