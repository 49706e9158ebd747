"""Reference model of :class:`twinplane.hdl.ram.BlockRAM`: a write port and
a two-stage read (the array's read on ``en``, the output register on
``out_en``), clock by clock."""

import random

__all__ = ["BlockRAMModel", "random_ops"]


class BlockRAMModel:
    def __init__(self, width: int, depth: int, granularity: int | None = None, init=()):
        self.width, self.depth = width, depth
        self.granularity = granularity or width
        self.mem = list(init) + [0] * (depth - len(init))
        self.latch = 0  # the array's read register
        self.out = 0  # the output register: ``read.data``

    def step(self, *, w_addr=0, w_data=0, w_en=0, r_addr=0, r_en=0, out_en=0):
        """One clock edge with these port values."""
        if out_en:
            self.out = self.latch
        if r_en:
            self.latch = self.mem[r_addr]
        g = self.granularity
        for i in range(self.width // g):
            if (w_en >> i) & 1:
                mask = ((1 << g) - 1) << (i * g)
                self.mem[w_addr] = (self.mem[w_addr] & ~mask) | (w_data & mask)


def random_ops(rng: random.Random, width: int, depth: int, granularity: int | None, n: int):
    """``n`` clocks of random port values; no read of the entry written in
    the same clock (the RAM's answer is undefined there)."""
    lanes = width // (granularity or width)
    hot = [rng.randrange(depth) for _ in range(8)]  # a few addresses, so reads hit writes
    for _ in range(n):
        w_addr = rng.choice(hot) if rng.random() < 0.5 else rng.randrange(depth)
        r_addr = rng.choice(hot) if rng.random() < 0.5 else rng.randrange(depth)
        w_en = rng.getrandbits(lanes) if rng.random() < 0.5 else 0
        if r_addr == w_addr:
            w_en = 0
        yield {"w_addr": w_addr, "w_data": rng.getrandbits(width), "w_en": w_en, "r_addr": r_addr,
               "r_en": int(rng.random() < 0.7), "out_en": int(rng.random() < 0.7)}
