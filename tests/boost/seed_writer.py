# writer.py for windows & linux
from multiprocessing.shared_memory import SharedMemory
import time

with open("data.zip", "rb") as file:
    data = file.read()
    shm = SharedMemory(name="shm_test", create=True, size=len(data))
    shm.buf[:] = data

try:
    while True:
        print("data available")
        time.sleep(3)
finally:
    shm.close()
    shm.unlink() # destroied in producer
