"""The seed's sharing_with_mmap: anonymous shared memory across os.fork(), on shmbridge."""

import os

import shmbridge


def sharing_with_mmap() -> None:
    buf = shmbridge.anonymous(100)  # mmap.mmap(-1, 100), but MAP_SHARED: the child's writes show

    pid = os.fork()
    if pid == 0:
        # Child process
        print("child process write", flush=True)
        buf.buf[0:100] = b"a" * 100
        os._exit(0)
    else:
        os.waitpid(pid, 0)  # the seed slept 2 s; waiting for the child is exact
        print(f"parent process read {buf.read(0, 100)!r}")


if __name__ == "__main__":
    sharing_with_mmap()
