"""Write the seed inputs of the array_header fuzz target (seeds/array_header/).

Written from docs/SPEC.md 7.1 with the standard library alone: valid headers of each kind of
layout (C, F, 0-d, empty, negative, zero and padded strides), from which libFuzzer mutates.
Run: python3 crates/shmbridge/fuzz/make_seeds.py
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import List, Optional


def header(
    kind: str,
    bits: int,
    shape: List[int],
    strides: List[int],
    origin: int = 0,
    data_len: Optional[int] = None,
    pad: int = 0,
) -> bytes:
    n = len(shape)
    hlen = 64 + 16 * n
    doff = (hlen + 63) // 64 * 64
    if data_len is None:
        count = 1
        for d in shape:
            count *= d
        data_len = count * bits // 8
    b = b"SHMBARRY" + struct.pack(
        "<HHIBBBBIQQQ16x", 1, 0, hlen, ord(kind), bits, n, 0, 0, doff, data_len, origin
    )
    for d, s in zip(shape, strides):
        b += struct.pack("<Qq", d, s)
    b += bytes(doff - len(b)) + bytes(range(256)) * ((data_len + pad) // 256 + 1)
    return b[: doff + data_len + pad]


SEEDS = {
    "c_f32_2x3": header("f", 32, [2, 3], [12, 4]),
    "f_i64_3x2": header("i", 64, [3, 2], [8, 24]),
    "scalar_c128": header("c", 128, [], []),
    "empty_u8": header("u", 8, [0, 5], [5, 1]),
    "reversed_i16": header("i", 16, [4], [-2], origin=6),
    "broadcast_f64": header("f", 64, [5, 3], [0, 8], data_len=24),
    "padded_u8": header("u", 8, [3, 5], [8, 1], data_len=21),
    "bool_4d": header("b", 8, [2, 1, 3, 2], [6, 6, 2, 1]),
    "f16_long": header("f", 16, [100], [2], pad=64),
}

if __name__ == "__main__":
    out = Path(__file__).parent / "seeds" / "array_header"
    out.mkdir(parents=True, exist_ok=True)
    for name, data in SEEDS.items():
        (out / name).write_bytes(data)
    print(f"{len(SEEDS)} seeds in {out}")
