"""Flow table: geometry, hash functions and the bit-exact reference model.

Ref: patent figure 21 (make room by deleting the oldest flow); hashing after
Carter & Wegman's H3 class (each index bit is the parity of the key ANDed
with a fixed mask) and bucketized cuckoo hashing (Dietzfelbinger & Weidling,
"Balanced allocation and dictionaries with tightly packed constant size bins").

Organisation (shared with ``hdl/flowtable``): ``tables`` sub-tables of
``buckets`` buckets of ``ways`` slots.  A key may live in bucket
``hash(t, key)`` of every sub-table ``t``.  A slot holds (valid, the key
less its low ``index_bits`` bits, handle); the handle is a stable entry number in ``[0, entries)`` that indexes the
action and counter memories, so moving a key between slots never moves its
action or counters and a handle the data path holds stays right.

Insert (the control FSM in gateware does exactly these steps in this order):

1. the key is present -> update its action (``UPDATED``);
2. a candidate bucket has a free way -> the least occupied candidate bucket
   (lowest table on a tie), its lowest free way (``INSERTED``);
3. one cuckoo move: for each candidate slot in (table, way) order, the key in
   it may move to a free way of its bucket in another table (tables in order,
   lowest free way); the first that can, moves, and the new key takes its
   slot (``INSERTED``);
4. otherwise the oldest candidate (largest ``now - last_seen`` modulo
   ``2**ts_width``, first in (table, way) order on a tie) is evicted and its
   handle is reused (``EVICTED``, with the victim's key, action, counters).
   An INSERT may name one handle to ``keep``: it is never the victim (the
   DFS keeps a flow's inbound entry while it inserts the return entry).

New handles come from a counter of never-used handles first, then from a FIFO
of deleted ones.
"""

import enum
from dataclasses import dataclass, field

__all__ = [
    "Entry",
    "FlowGeometry",
    "FlowOp",
    "FlowTableModel",
    "InsertResult",
    "InsertStatus",
    "h3_masks",
    "h3_hash",
    "h3_restore",
    "HASH_SEED",
]

# Fixed seed of the H3 masks: "twinplan" in ASCII.
HASH_SEED = 0x7477696E706C616E


def _splitmix64(state: int):
    while True:
        state = (state + 0x9E3779B97F4A7C15) & (2**64 - 1)
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & (2**64 - 1)
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & (2**64 - 1)
        yield z ^ (z >> 31)


@dataclass(frozen=True)
class FlowGeometry:
    """Sizes of the flow table; the gateware and the model take the same one.

    The default, 4 tables x 128 buckets x 2 ways = 1024 entries, fills to at
    least 90 % before the first insert that has to evict (random keys,
    ``sim/flowtable/bench.py``) and takes 17 of the LFE5U-25F's 56 EBR, 24
    with the DFS's 105-bit keys and 179-bit actions (the arithmetic is in
    ``hdl/flowtable/table.py``).  Timestamps are modulo
    ``2**ts_width``: pick the tick so that this outlasts the idle timeout.
    """

    key_width: int = 104
    action_width: int = 64
    buckets: int = 128
    ways: int = 2
    tables: int = 4
    ts_width: int = 16
    packets_width: int = 32
    bytes_width: int = 40
    nbytes_width: int = 16

    def __post_init__(self):
        for name in ("key_width", "action_width", "buckets", "ways", "tables", "ts_width",
                     "packets_width", "bytes_width", "nbytes_width"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        if self.buckets < 2 or self.buckets & (self.buckets - 1):
            raise ValueError(f"buckets must be a power of two >= 2, not {self.buckets!r}")
        if self.tables < 2:
            raise ValueError(f"tables must be at least 2, not {self.tables!r}")
        if self.key_width < 2 * self.index_bits:
            raise ValueError(f"key_width {self.key_width!r} is too narrow for "
                             f"{self.buckets!r} buckets")

    @property
    def entries(self) -> int:
        return self.tables * self.buckets * self.ways

    @property
    def index_bits(self) -> int:
        return (self.buckets - 1).bit_length()

    @property
    def handle_bits(self) -> int:
        return max(1, (self.entries - 1).bit_length())

    @property
    def rest_width(self) -> int:
        """Key bits a slot stores: all but the low ``index_bits`` (see :func:`h3_masks`)."""
        return self.key_width - self.index_bits

    @property
    def slot_width(self) -> int:
        """Bits of one slot in a bucket word: valid, stored key, handle."""
        return 1 + self.rest_width + self.handle_bits

    @property
    def candidates(self) -> int:
        return self.tables * self.ways


def h3_masks(geometry: FlowGeometry) -> list[list[int]]:
    """``masks[t][j]``: the key bits whose parity is bit ``j`` of table ``t``'s index.

    Mask ``j`` holds key bit ``j`` and none of the other low ``index_bits`` key
    bits, so the low key bits follow from the bucket and the rest of the key
    (:func:`h3_restore`): a slot stores only ``key >> index_bits`` (quotienting),
    which saves one EBR column per sub-table at the default geometry.
    """
    rng = _splitmix64(HASH_SEED)
    words = (geometry.key_width + 63) // 64
    masks = []
    for _ in range(geometry.tables):
        table = []
        for _ in range(geometry.index_bits):
            m = 0
            for w in range(words):
                m |= next(rng) << (64 * w)
            low = (1 << geometry.index_bits) - 1
            table.append((m & ((1 << geometry.key_width) - 1) & ~low) | (1 << len(table)))
        masks.append(table)
    return masks


def h3_hash(masks: list[list[int]], table: int, key: int) -> int:
    return sum((((key & m).bit_count()) & 1) << j for j, m in enumerate(masks[table]))


def h3_restore(masks: list[list[int]], table: int, bucket: int, rest: int) -> int:
    """The key whose stored part is ``rest`` in ``bucket`` of ``table``."""
    ib = len(masks[table])
    key = rest << ib
    for j, m in enumerate(masks[table]):
        key |= (((bucket >> j) ^ (key & m).bit_count()) & 1) << j
    return key


class FlowOp(enum.IntEnum):
    """Commands of the gateware's control port (the model has a method for each)."""

    INSERT = 0
    DELETE = 1
    READ = 2
    FIND = 3
    CLEAR = 4
    FLUSH = 5


class InsertStatus(enum.IntEnum):
    INSERTED = 0
    UPDATED = 1
    EVICTED = 2


@dataclass
class Entry:
    handle: int
    key: int
    action: int
    packets: int
    bytes: int
    last_seen: int


@dataclass
class InsertResult:
    handle: int
    status: InsertStatus
    victim: Entry | None = None
    """The evicted entry (before it was replaced) when ``status`` is ``EVICTED``."""


@dataclass
class _Slot:
    valid: bool = False
    key: int = 0
    handle: int = 0


@dataclass
class FlowTableModel:
    geometry: FlowGeometry = field(default_factory=FlowGeometry)

    def __post_init__(self):
        if not isinstance(self.geometry, FlowGeometry):
            raise TypeError(f"geometry must be a FlowGeometry, not {self.geometry!r}")
        g = self.geometry
        self.masks = h3_masks(g)
        self.slots = [[[_Slot() for _ in range(g.ways)] for _ in range(g.buckets)]
                      for _ in range(g.tables)]
        self.action = [0] * g.entries
        self.packets = [0] * g.entries
        self.bytes = [0] * g.entries
        self.last_seen = [0] * g.entries
        self.loc = [(0, 0, 0)] * g.entries
        self.flush()

    # -- helpers -------------------------------------------------------------
    def bucket_of(self, table: int, key: int) -> int:
        return h3_hash(self.masks, table, key)

    def _cands(self, key):
        return [(t, self.bucket_of(t, key)) for t in range(self.geometry.tables)]

    def _put(self, t, b, w, key, handle):
        self.slots[t][b][w] = _Slot(True, key, handle)
        self.loc[handle] = (t, b, w)

    def _alloc(self) -> int:
        if self.fresh < self.geometry.entries:
            self.fresh += 1
            return self.fresh - 1
        return self.free.pop(0)

    def _entry(self, handle) -> Entry:
        return Entry(handle, self.slots[self.loc[handle][0]][self.loc[handle][1]]
                     [self.loc[handle][2]].key, self.action[handle], self.packets[handle],
                     self.bytes[handle], self.last_seen[handle])

    def _valid(self, handle) -> bool:
        t, b, w = self.loc[handle]
        s = self.slots[t][b][w]
        return s.valid and s.handle == handle

    # -- API -----------------------------------------------------------------
    def flush(self):
        for table in self.slots:
            for bucket in table:
                for w in range(len(bucket)):
                    bucket[w] = _Slot()
        self.fresh = 0
        self.free: list[int] = []
        self.count = 0

    @property
    def occupancy(self) -> float:
        return self.count / self.geometry.entries

    def lookup(self, key: int) -> int | None:
        for t, b in self._cands(key):
            for s in self.slots[t][b]:
                if s.valid and s.key == key:
                    return s.handle
        return None

    def insert(self, key: int, action: int, now: int, keep: int | None = None) -> InsertResult:
        """Insert ``key`` (or update its action).  When the table is full the
        candidate idle the longest is evicted, never the entry ``keep`` (a
        handle): a flow's return entry must not push out its own inbound one.
        Another candidate always exists (``tables`` >= 2)."""
        g = self.geometry
        handle = self.lookup(key)
        if handle is not None:
            self.action[handle] = action
            return InsertResult(handle, InsertStatus.UPDATED)
        cands = self._cands(key)
        # Least occupied candidate bucket with a free way.
        best = None
        for t, b in cands:
            used = sum(s.valid for s in self.slots[t][b])
            if used < g.ways and (best is None or used < best[0]):
                best = (used, t, b)
        if best is not None:
            _, t, b = best
            w = next(w for w, s in enumerate(self.slots[t][b]) if not s.valid)
            return self._new(t, b, w, key, action, now)
        # One cuckoo move.
        for t, b in cands:
            for w, s in enumerate(self.slots[t][b]):
                for u in range(g.tables):
                    if u == t:
                        continue
                    ub = self.bucket_of(u, s.key)
                    free = [v for v, o in enumerate(self.slots[u][ub]) if not o.valid]
                    if free:
                        self._put(u, ub, free[0], s.key, s.handle)
                        return self._new(t, b, w, key, action, now)
        # Evict the oldest candidate.
        mod = 1 << g.ts_width
        victim = None
        for t, b in cands:
            for w, s in enumerate(self.slots[t][b]):
                if s.handle == keep:
                    continue
                age = (now - self.last_seen[s.handle]) % mod
                if victim is None or age > victim[0]:
                    victim = (age, t, b, w, s.handle)
        _, t, b, w, handle = victim
        old = self._entry(handle)
        self._set(handle, action, now)
        self._put(t, b, w, key, handle)
        return InsertResult(handle, InsertStatus.EVICTED, old)

    def _set(self, handle, action, now):
        self.action[handle] = action
        self.packets[handle] = 0
        self.bytes[handle] = 0
        self.last_seen[handle] = now % (1 << self.geometry.ts_width)

    def _new(self, t, b, w, key, action, now):
        handle = self._alloc()
        self._set(handle, action, now)
        self._put(t, b, w, key, handle)
        self.count += 1
        return InsertResult(handle, InsertStatus.INSERTED)

    def read(self, handle: int) -> Entry | None:
        self._check(handle)
        return self._entry(handle) if self._valid(handle) else None

    def delete(self, handle: int) -> Entry | None:
        self._check(handle)
        if not self._valid(handle):
            return None
        old = self._entry(handle)
        t, b, w = self.loc[handle]
        self.slots[t][b][w] = _Slot(False, self.slots[t][b][w].key, handle)
        self.free.append(handle)
        self.count -= 1
        return old

    def touch(self, handle: int, nbytes: int, now: int):
        """Count one packet of ``nbytes`` bytes; counters wrap at their widths."""
        g = self.geometry
        self._check(handle)
        self.packets[handle] = (self.packets[handle] + 1) % (1 << g.packets_width)
        self.bytes[handle] = (self.bytes[handle] + nbytes) % (1 << g.bytes_width)
        self.last_seen[handle] = now % (1 << g.ts_width)

    def clear(self, handle: int, now: int):
        """Zero the packet and byte counters; ``last_seen`` becomes ``now``."""
        self._check(handle)
        self.packets[handle] = 0
        self.bytes[handle] = 0
        self.last_seen[handle] = now % (1 << self.geometry.ts_width)

    def entries(self) -> list[Entry]:
        return [self._entry(h) for h in range(self.geometry.entries) if self._valid(h)]

    def _check(self, handle):
        if not 0 <= handle < self.geometry.entries:
            raise ValueError(f"handle {handle!r} out of range")
