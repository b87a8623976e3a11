# reader.py for linux
from multiprocessing.shared_memory import SharedMemory
import multiprocessing.resource_tracker as rt

shm = SharedMemory("shm_test", create=False)
with open("result.zip", "wb") as file:
    file.write(shm.buf[:])

shm.close()
rt.unregister("/shm_test", "shared_memory")
