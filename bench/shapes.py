"""Generates (old, new) image pairs of the input shapes that stress a delta matcher.

    python3 bench/shapes.py OUT_DIR SIZE_MIB [SHAPE ...]

writes OUT_DIR/<shape>-<size>m/{old,new}. Deterministic (seeded), so every run and every
tool sees the same bytes. Shapes (n = SIZE_MIB MiB):

  pad-end      1 MiB of code, then 0xFF to n (erased NOR flash); new: code edited
  pad-start    0xFF, then 1 MiB of code at the end
  pad-middle   code, 0xFF gap, code (two partitions)
  zero-fill    1 MiB of code, then zeros to n
  repeated     one 4 KiB sector repeated to n, a few sectors differ; new adds/changes some
  identical    new == old (code-like data)
  shifted      new is old with 7 bytes inserted at the start
  random       old and new independent random data
  code         code-like data edited throughout (a firmware-sized ordinary pair)

"Code" is random bytes with a skewed distribution and repeated short phrases, so that it
compresses somewhat like machine code; "edited" inserts, deletes and changes a few bytes
every few KiB, which shifts the alignment like a rebuilt binary.
"""

import os
import random
import sys

MIB = 1 << 20


def code(rng, n):
    phrases = [rng.randbytes(rng.randint(2, 12)) for _ in range(512)]
    out = bytearray()
    while len(out) < n:
        if rng.random() < 0.6:
            out += phrases[int(rng.paretovariate(1.2)) % len(phrases)]
        else:
            out += rng.randbytes(rng.randint(1, 8))
    return bytes(out[:n])


def edit(rng, data, every=4096):
    out = bytearray()
    i = 0
    while i < len(data):
        step = rng.randint(every // 2, every * 3 // 2)
        out += data[i:i + step]
        i += step
        kind = rng.random()
        if kind < 0.3:
            out += rng.randbytes(rng.randint(1, 16))
        elif kind < 0.6:
            i += rng.randint(1, 16)
        else:
            out += rng.randbytes(4)
            i += 4
    return bytes(out)


def shift4(rng, data):
    """edit(data) cut or grown to len(data) + 4: the padding after it moves by 4 bytes,
    within the 8 where classic bsdiff rejects the match over the run and retries 1 byte on."""
    e = edit(rng, data)
    return (e + b"\x42" * 64)[: len(data) + 4]


def pad(data, n, byte):
    return data + bytes([byte]) * max(0, n - len(data))


def shape(name, n, rng):
    c = code(rng, min(MIB, n // 2))
    if name == "pad-end":
        return pad(c, n, 0xFF), pad(shift4(rng, c), n, 0xFF)
    if name == "zero-fill":
        return pad(c, n, 0), pad(shift4(rng, c), n, 0)
    if name == "pad-start":
        return b"\xff" * (n - len(c)) + c, (b"\xff" * n + edit(rng, c))[-n:]
    if name == "pad-middle":
        half = c[: len(c) // 2]
        old = half + b"\xff" * (n - 2 * len(half)) + half
        e = shift4(rng, half)
        return old, e + b"\xff" * (n - 2 * len(e)) + edit(rng, half)
    if name == "repeated":
        sector = code(rng, 4096)
        old = bytearray(sector * (n // 4096))
        new = bytearray(old)
        for k in range(0, n // 4096, 97):
            old[k * 4096:k * 4096 + 4096] = code(rng, 4096)
        for k in range(0, n // 4096, 61):
            new[k * 4096:k * 4096 + 4096] = code(rng, 4096)
        return bytes(old), bytes(new) + sector * 16
    if name == "identical":
        c = code(rng, n)
        return c, c
    if name == "shifted":
        c = code(rng, n)
        return c, b"SHIFTED" + c
    if name == "random":
        return rng.randbytes(n), rng.randbytes(n)
    if name == "code":
        c = code(rng, n)
        return c, edit(rng, c, every=16384)
    raise SystemExit(f"unknown shape {name}")


SHAPES = ["pad-end", "pad-start", "pad-middle", "zero-fill", "repeated", "identical",
          "shifted", "random", "code"]


def main():
    out, mib = sys.argv[1], float(sys.argv[2])
    names = sys.argv[3:] or SHAPES
    n = int(mib * MIB)
    for name in names:
        d = os.path.join(out, f"{name}-{sys.argv[2]}m")
        if os.path.exists(os.path.join(d, "new")):
            continue
        os.makedirs(d, exist_ok=True)
        old, new = shape(name, n, random.Random(f"{name}/{n}"))
        with open(os.path.join(d, "old"), "wb") as f:
            f.write(old)
        with open(os.path.join(d, "new"), "wb") as f:
            f.write(new)
        print(d)


if __name__ == "__main__":
    main()
