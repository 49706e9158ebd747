# Ref: docs/protocol.md (association handshake, sessions, replay window after
#      RFC 4303 §3.4.3, fencing epoch, CSMB reliability); the patent's CSMB
#      (HELLO first, version negotiation, authentication before anything else).
"""Session engine: the DFS side of every CS association, in gateware.

It sits between the message receiver and transmitter and the rest of the DFS:

* CSMB HELLO from a new CS takes a slot (``cs_slots`` of them) and is
  answered with the DFS's nonce for the association and the version verdict
  (NONE, VERS_NEW with our highest, VERS_OBSOLETE with our lowest);
* AUTH_CHALLENGE is answered with ``SipHash(key, "twinplane-auth" | challenge
  | nonce)``, and the session becomes ``SipHash(key, "twinplane-session" |
  challenge | nonce) mod 2**32`` (1 if that is 0), computed by a SipHash core
  of its own;
* every message of a known CS passes its slot's 64-message replay window;
  every other message must also carry the slot's session; the redundancy
  rule of docs/redundancy.md: only an ACTIVE slot raises the DFS's epoch,
  only an ACTIVE slot at the newest epoch changes state (the others get ACK
  STALE_EPOCH), VS_LIST and DUMP are open to any authenticated CS, turning
  ACTIVE takes a fresh authentication, the CSMB HELLO answer says
  ``Flag.ACTIVE_CS``, and a CS silent for 3 HELLO intervals (counted on
  ``tick``) loses its slot;
* CSMB requests (ADD_VS, DEL_VS, VS_LIST, CONFIG) are executed and answered
  with ACK (or ACK NOTAUTH / STALE_EPOCH / BADCONFIG); virtual servers are
  kept in a small memory and written to the CAM through ``vs_write``;
* accepted SSMB state messages go to the DFS core on ``to_core``; messages of
  the core (QUERY, DELETE, STATS, ...) come in on ``from_core`` and leave
  stamped with the active CS's session, the next ``seq`` and the epoch,
  addressed to its SSMB address; DELETE and RESET go to every authenticated
  CS (replication), the active one first; with several ACTIVE CSs at the
  newest epoch a QUERY goes to the one that owns its flow key (CRC-32 split);
  a DUMP's answers go to the CS that asked; with ``install_verdicts`` a
  REPLY/NEWFLOW the core says (``installed``) it installed is copied,
  re-stamped, to every other authenticated CS.

Area: the engine copies no message.  The message it works on stays in the
receiver's register (``rx`` is taken only when done, and ``to_core`` is
``rx``'s payload), a core message stays on ``from_core`` until sent (to
every recipient), and a reply is read a word at a time from its kind's
constants and a few registers while the transmitter reads it (no reply-sized
register).  The SipHash core is shared (``shared_hash``).

The DFS nonce comes from a free-running xorshift64 generator sampled when a
slot is taken: unpredictable to the network only through arrival timing.  A
board should seed it from a true entropy source (documented in docs/dfs.md).
"""

from amaranth import Array, Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import crc, data, enum, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from twinplane.model.flowkey import KEY_WIDTH
from twinplane.protocol.codec import AUTH_LABEL, SESSION_LABEL, ReplayWindow
from twinplane.protocol.codes import (
    PROTOCOL_VERSION,
    PROXY_FLAGS,
    SSMB_UDP_PORT,
    SUPPORTED_VERSIONS,
    Bus,
    ConfigItem,
    CsmbType,
    ErrorCode,
    Flag,
    Role,
    SsmbType,
)
from twinplane.protocol.layouts import block_layout, header_layout, message_layout
from twinplane.protocol.messages import (
    HEADER_SIZE,
    TAG_SIZE,
    AddVs,
    Config,
    CsmbAck,
    CsmbAuthChallenge,
    CsmbAuthResponse,
    CsmbHello,
    DelVs,
    SsmbAuthChallenge,
    SsmbAuthResponse,
    SsmbHello,
    SsmbQuery,
    VirtualServer,
    VsList,
)

from ..crypto.siphash import SipHash24
from ..lut4 import builds_lut4s, lut4, lut_eq, lut_eq_const
from ..onehot import Loads, OneHotFSM, flop_copy, onehot_mux
from ..ram import BlockRAM
from .hash_arbiter import hash_client_signature
from .layout import (
    MAX_RECEIVED_BYTES,
    MAX_SENT_BYTES,
    READ_LATENCY,
    core_read_signature,
    message_read_signature,
    received_message_layout,
    transmit_message_layout,
    wire_words,
)

__all__ = ["SessionEngine", "core_message_layout", "vs_write_layout"]

_IPV4_MAPPED = 0xFFFF << 32
_LOWEST, _HIGHEST = min(SUPPORTED_VERSIONS), max(SUPPORTED_VERSIONS)
_WINDOW = ReplayWindow.SIZE
_KEY_BITS = 8 * ((KEY_WIDTH + 7) // 8)  # the flow key as the model's crc32 sees it: whole bytes
_CLOCK_BITS = 24  # the engine's millisecond clock (wraps after 4.6 hours)
_DEFAULT_HELLO_MS = 1000  # a CS's HELLO interval until its HELLO says otherwise
_LOOKUP_CLOCKS = 6  # slot match -> lookup -> its window -> the differences -> their verdicts, each a register
_COUNTERS = (
    "hellos",
    "authentications",
    "requests",
    "to_core_count",
    "from_core_count",
    "no_slot",
    "not_authenticated",
    "bad_session",
    "replayed",
    "stale_epoch",
    "no_active_cs",
    "reauth_for_active",
    "expired",
    "replicated",
)


#: CSMB types the DFS sends: the only ones with a by-type serial counter here.
_CSMB_SENT = (CsmbType.HELLO, CsmbType.AUTH_RESPONSE, CsmbType.VS_LIST, CsmbType.ACK)


class _Kind(enum.Enum, shape=3):
    """What the message being sent is."""

    HELLO = 0  # answer to a HELLO, on its bus
    AUTH_RESPONSE = 1  # answer to an AUTH_CHALLENGE, on its bus
    VS_LIST = 2
    ACK = 3
    CORE = 4  # a message of the DFS core, to the active CS
    REPLICA = 5  # the REPLY/NEWFLOW on rx, to another CS


def core_message_layout() -> data.StructLayout:
    """A message the DFS core sends to the active CS, as far as the engine
    decides on it: the number of its signed bytes, its header's type, error
    and session (0: the engine stamps the CS's), and for a QUERY its flow
    (whose owner the active/active split picks).  The signed bytes
    themselves (header fields other than session, seq, epoch and msg_length
    filled in) are read by index through :func:`core_read_signature` while
    the message is offered: no message-sized register or multiplexer on
    either side."""
    hdr = header_layout()
    return data.StructLayout(
        {
            "length": range(MAX_SENT_BYTES + 1),
            "msg_type": hdr["msg_type"].shape,
            "error": hdr["error"].shape,
            "session": hdr["session"].shape,
            "flow": message_layout(SsmbQuery)["flow"].shape,
        }
    )


def vs_write_layout() -> data.StructLayout:
    """One CAM write: slot ``index`` now holds ``vs`` (``valid``) or nothing."""
    return data.StructLayout({"index": 8, "valid": 1, "flags": 32, "vs": block_layout(VirtualServer)})


def _stored_vs_layout() -> data.StructLayout:
    """A virtual server as the engine keeps it for VS_LIST: its flags and
    its fields, the address as IPv4 (ADD_VS takes IPv4-mapped addresses
    only, so the upper 96 bits are known)."""
    fields = {name: 32 if name == "virt_addr" else field.shape for name, field in block_layout(VirtualServer)}
    return data.StructLayout({"flags": 32, **fields})


#: Block RAM words the virtual-server table spans (the DP16KD's 36-bit mode
#: is 512 words deep; the table uses ``vs_entries`` of them).
_VS_RAM_DEPTH = 512


def _version(major, minor):
    """(major << 8) | minor: versions compare as numbers."""
    if isinstance(major, int):
        return major << 8 | minor
    return Cat(minor[:8], major[:8])


class SessionEngine(wiring.Component):
    def __init__(self, *, cs_slots: int = 2, vs_entries: int = 16, nonce_seed: int = 0x9E3779B97F4A7C15,
                 ms_per_tick: int = 1, install_verdicts: bool = False, shared_hash: bool = False):
        self.check_arguments(cs_slots=cs_slots, vs_entries=vs_entries, nonce_seed=nonce_seed,
                             ms_per_tick=ms_per_tick, install_verdicts=install_verdicts)
        if not isinstance(shared_hash, bool):
            raise TypeError(f"shared_hash must be a bool, not {shared_hash!r}")
        self._install_verdicts = install_verdicts
        self._cs_slots = cs_slots
        self._vs_entries = vs_entries
        self._nonce_seed = nonce_seed
        self._ms_per_tick = ms_per_tick
        self._shared_hash = shared_hash
        hash_port = {"hash": Out(hash_client_signature())} if shared_hash else {"key": In(128)}
        super().__init__(
            {
                **hash_port,
                "own_mac": In(48),
                "own_ip": In(32),
                "tick": In(1),  # one clock every ms_per_tick milliseconds (the DFS's timebase)
                "rx": In(stream.Signature(received_message_layout())),
                "tx": Out(stream.Signature(transmit_message_layout())),
                "tx_read": In(message_read_signature()),
                "rx_rotate": Out(1),  # to the receiver: rotate raw (a replica is being read)
                "to_core": Out(stream.Signature(received_message_layout())),
                "from_core": In(stream.Signature(core_message_layout())),
                "from_core_read": Out(core_read_signature()),  # from_core's bytes, by index
                # install_verdicts: one transfer per REPLY/NEWFLOW taken on
                # to_core, 1 if the core installed it (then it is replicated)
                **({"installed": In(stream.Signature(1))} if install_verdicts else {}),
                "vs_write": Out(stream.Signature(vs_write_layout())),
                "dfs_ip": Out(32),
                "dfs_mac": Out(48),
                "idle_timeout_s": Out(16),
                "active_cs": Out(range(cs_slots + 1)),  # cs_slots: none
                "active_set": Out(cs_slots),  # slots in the active set (for the core's re-asking)
                # slots a new flow may wait for: authenticated, or taking over
                # (re-authenticating to become active); none: the core drops it
                "cs_present": Out(cs_slots),
                # with from_core.ready: whether the core's message went out, and to which slot first
                "core_delivered": Out(1),
                "core_sent_to": Out(range(max(cs_slots, 2))),
                **{name: Out(32) for name in _COUNTERS},
            }
        )

    @staticmethod
    def check_arguments(*, cs_slots: int, vs_entries: int, nonce_seed: int, ms_per_tick: int = 1,
                        install_verdicts: bool = False) -> None:
        if not isinstance(install_verdicts, bool):
            raise TypeError(f"install_verdicts must be a bool, not {install_verdicts!r}")
        if not isinstance(cs_slots, int) or not 1 <= cs_slots <= 8:
            raise ValueError(f"cs_slots must be an integer from 1 to 8, not {cs_slots!r}")
        if not isinstance(vs_entries, int) or not 1 <= vs_entries <= 256:
            raise ValueError(f"vs_entries must be an integer from 1 to 256, not {vs_entries!r}")
        if not isinstance(nonce_seed, int) or not 0 < nonce_seed < 1 << 64:
            raise ValueError(f"nonce_seed must be a non-zero 64-bit integer, not {nonce_seed!r}")
        if not isinstance(ms_per_tick, int) or not 1 <= ms_per_tick <= 1000:
            raise ValueError(f"ms_per_tick must be an integer from 1 to 1000, not {ms_per_tick!r}")

    def elaborate(self, platform):
        m = Module()
        n = self._cs_slots
        if self._shared_hash:
            siphash = self.hash
        else:
            m.submodules.siphash = siphash = SipHash24()
            m.d.comb += siphash.key.eq(self.key)

        # -- configuration registers (CONFIG overrides the build-time values)
        # The addresses are registers that follow own_ip/own_mac until CONFIG
        # sets them (a clock behind): the multiplexer behind the set flags ran
        # on into the transmitter's header byte select, 7 levels.
        dfs_ip_set, dfs_mac_set = Signal(), Signal()
        dfs_ip_reg, dfs_mac_reg = Signal(32), Signal(48)
        m.d.comb += [self.dfs_ip.eq(dfs_ip_reg), self.dfs_mac.eq(dfs_mac_reg)]
        with m.If(~dfs_ip_set):
            m.d.sync += dfs_ip_reg.eq(self.own_ip)
        with m.If(~dfs_mac_set):
            m.d.sync += dfs_mac_reg.eq(self.own_mac)

        # -- nonce generator: xorshift64, one step per clock
        nonce_state = Signal(64, init=self._nonce_seed)
        x1 = nonce_state ^ (nonce_state << 13)[:64]
        x2 = x1 ^ (x1 >> 7)
        m.d.sync += nonce_state.eq(x2 ^ (x2 << 17)[:64])

        # -- CS slots
        def slot_array(width, name):
            return Array(Signal(width, name=f"{name}{i}") for i in range(n))

        in_use, authed = slot_array(1, "in_use"), slot_array(1, "authed")
        # Between a standby's HELLO as ACTIVE (its session ends) and its
        # AUTH_CHALLENGE no slot may be authenticated at all (the old active
        # expired: that is how the standby heard); a new flow then must wait
        # for it, not be dropped as if no CS were there.
        taking_over = slot_array(1, "taking_over")
        cs_mac, cs_ip, cs_port = slot_array(48, "cs_mac"), slot_array(32, "cs_ip"), slot_array(16, "cs_port")
        ssmb_ip, ssmb_port = slot_array(32, "ssmb_ip"), slot_array(16, "ssmb_port")
        nonce, session = slot_array(64, "nonce"), slot_array(32, "session")
        highest = slot_array(32, "highest")  # the windows themselves are in LUT RAM (below)
        # A slot taken reads its highest as 0 until its first message moves
        # it (always ahead of 0): zeroing the register as the slot is taken
        # put a LUT4 a bit in front of it, the flag fits the read's slot mux.
        highest_clear = slot_array(1, "highest_clear")
        # tx_seq: the seq of the slot's next message (its last one + 1)
        tx_seq, role, epoch = slot_array(32, "tx_seq"), slot_array(1, "role"), slot_array(16, "epoch")
        cs_id = slot_array(8, "cs_id")  # orders the active set (active/active QUERY split)
        deadline = slot_array(_CLOCK_BITS, "deadline")  # ms: forgotten after (3 HELLO intervals)
        newest_epoch = Signal(16)

        # -- milliseconds, from the DFS's tick (wraps; deadlines are compared
        # by the sign of the difference, and 3 intervals < 2**23 ms)
        now_ms = Signal(_CLOCK_BITS)
        with m.If(self.tick):
            m.d.sync += now_ms.eq(now_ms + self._ms_per_tick)

        # Each slot's "its deadline has passed", registered (the 24-bit
        # difference through the slot multiplexer ran on into in_use and
        # authed): a clock old, and a deadline is never written in the
        # clock before "Idle" looks at it.
        slot_expired = Signal(n)
        m.d.sync += slot_expired.eq(Cat(*((deadline[i] - now_ms)[_CLOCK_BITS - 1] for i in range(n))))

        # -- the message being handled: the receiver holds it until we take it
        cur = self.rx.payload
        hdr = cur.header
        is_csmb = cur.bus == Bus.CSMB

        def body(cls):
            return data.View(message_layout(cls), cur.raw[: message_layout(cls).size])

        # Slot lookup and replay window run as a pipeline of registers fed
        # every clock from the held message and the slot table (the compares,
        # the 33-bit differences and the 64-bit window shift would be one
        # path ~25 ns long); "Looking up the sender" waits for it to settle
        # (_LOOKUP_CLOCKS) after the message or the table changed, then
        # "Sliding the window" moves the window a bit a clock.
        # Stage 1, slot lookup: CSMB by (address, port); SSMB by (address, session).
        # Each slot's compares are registered before they are combined and
        # picked from (the 32-bit compares, the pick and `slot` were one
        # path of 7 levels).
        # The 32-bit compares in 16-bit halves, each a register (whole, they
        # were 5 levels into their registers).
        match = Signal(n)
        session_same = Signal(n)
        for i in range(n):
            ip_same, port_same = Signal(2, name=f"ip_same{i}"), Signal(name=f"port_same{i}")
            session_halves = Signal(2, name=f"session_same_halves{i}")
            m.d.sync += [
                ip_same.eq(Cat(cs_ip[i][16 * h:16 * h + 16] == cur.src_ip[16 * h:16 * h + 16] for h in range(2))),
                port_same.eq(cs_port[i] == cur.src_port),
                session_halves.eq(Cat(session[i][16 * h:16 * h + 16] == hdr.session[16 * h:16 * h + 16]
                                      for h in range(2))),
            ]
            m.d.comb += [
                session_same[i].eq(session_halves.all()),
                match[i].eq(in_use[i] & ip_same.all() & Mux(is_csmb, port_same, authed[i] & session_same[i])),
            ]
        found, any_free = Signal(), Signal()
        slot = Signal(range(max(n, 2)))
        free_slot = Signal(range(max(n, 2)))
        m.d.sync += [found.eq(0), any_free.eq(0)]
        for i in reversed(range(n)):
            with m.If(match[i]):
                m.d.sync += [found.eq(1), slot.eq(i)]
            with m.If(~in_use[i]):
                m.d.sync += [any_free.eq(1), free_slot.eq(i)]

        # Stage 2: hdr.seq against the slot's highest, in three registers:
        # the slot's highest (the slot mux), the differences (carry chains
        # from flops), then their verdicts (the message port's worst path
        # alone was the slot mux, a 32-bit subtract and its zero test in one
        # clock, 10.3 ns).
        seq = hdr.seq
        slot_highest = Signal(32)
        m.d.sync += slot_highest.eq(Mux(highest_clear[slot], 0, highest[slot]))
        # One 33-bit difference, its sign the borrow: seq is ahead when it
        # is positive, behind inside the window when it is 0 to -63 (a
        # second subtraction and a compare, each a 32-bit carry chain, cost
        # ~64 LUT4 more).
        ahead = Signal(33)
        seq_zero, seq_ahead, far_ahead, near_behind = Signal(), Signal(), Signal(), Signal()
        shift = Signal(6)
        # The difference's verdicts from registered pieces of it: its sign,
        # its low 6 bits zero, and bits 6-31 all zeros or all ones (each
        # verdict from the whole difference in one clock was 5 levels).
        low_zero, mid_zero, mid_ones = Signal(name="low_zero"), Signal(name="mid_zero"), Signal(name="mid_ones")
        behind = Signal(name="behind")
        m.d.sync += [
            ahead.eq(seq - slot_highest),
            seq_zero.eq(seq == 0),
            behind.eq(ahead[32]),
            low_zero.eq(ahead[:6] == 0),
            mid_zero.eq(ahead[6:32] == 0),
            mid_ones.eq(ahead[6:32].all()),
            shift.eq(ahead[:6]),
        ]
        m.d.comb += [
            seq_ahead.eq(~behind & ~(low_zero & mid_zero)),
            far_ahead.eq(~mid_zero),
            near_behind.eq((~behind & low_zero & mid_zero) | (behind & mid_ones & ~low_zero)),
        ]

        # Also settled by stage 2, so that "Dispatching" decides from
        # registers (its decision enables the slot's window, epoch and the
        # DFS's newest epoch): the message's kind (stage 1) and how the
        # sender's slot stands (stage 2, from stage 1's `slot`).
        is_hello, is_challenge, read_only, is_request = Signal(), Signal(), Signal(), Signal()
        session_ok, slot_active, epoch_behind, epoch_ahead = Signal(), Signal(), Signal(), Signal()
        # The slot's epoch is registered before its compare, and the
        # message's epoch is hdr_epoch_q (the receiver's field, across the
        # port, and the slot mux in front of the 16-bit compare were 7.6 ns
        # routed in the 9b18dc6 build); settled by the lookup's clocks.
        slot_epoch_ahead, slot_epoch_q = Signal(), Signal(16)
        hdr_epoch_q = Signal(16)
        m.d.sync += hdr_epoch_q.eq(hdr.epoch)
        slot_authed = Signal()  # authed[slot], for "Answering HELLO" (its slot mux ran on into the epochs)
        csmb_q = Signal()  # is_csmb, for the states (the bus bit fanned out into their decisions)
        m.d.sync += [
            csmb_q.eq(is_csmb),
            is_hello.eq(Mux(is_csmb, cur.msg_type == CsmbType.HELLO, cur.msg_type == SsmbType.HELLO)),
            is_challenge.eq(Mux(is_csmb, cur.msg_type == CsmbType.AUTH_CHALLENGE,
                                cur.msg_type == SsmbType.AUTH_CHALLENGE)),
            read_only.eq(Mux(is_csmb, cur.msg_type == CsmbType.VS_LIST, cur.msg_type == SsmbType.DUMP)),
            is_request.eq(is_csmb & self._is_request(cur.msg_type)),
            # stage 1's registered compares (a 32-bit compare through the
            # slot multiplexer was 7 levels)
            session_ok.eq(Array(authed[i] & session_same[i] for i in range(n))[slot]),
            slot_authed.eq(authed[slot]),
            slot_active.eq(role[slot] == Role.ACTIVE),
            epoch_behind.eq(hdr.epoch < newest_epoch),
            epoch_ahead.eq(hdr.epoch > newest_epoch),
            slot_epoch_q.eq(epoch[slot]),
            slot_epoch_ahead.eq(hdr_epoch_q > slot_epoch_q),
        ]

        # The slots' 64-message windows, circular, in LUT RAM (16 words of 4
        # bits a slot): seq s is bit s mod 64, valid for the 64 seqs up to the
        # slot's highest (a 64-bit flop window per slot, shifted, read and
        # set through a slot multiplexer, cost ~480 LUT4).  Moving the
        # highest ahead clears the bits of the seqs it skips, one a clock in
        # "Sliding the window" (a sequence number is mostly one ahead of the
        # last), or every word, one a clock, when it jumps 64 or more;
        # accepting a message sets its bit.  Bits above a new slot's
        # highest (0) are never read before they are cleared, so taking a
        # slot clears nothing.  The word read for the verdict is the one
        # holding seq, registered in stage 2 (seen_word) like the highest.
        assert _WINDOW == 64
        m.submodules.window = window = memory.Memory(shape=4, depth=16 * n, init=[])
        win_rd = window.read_port(domain="comb")
        win_wr = window.write_port()
        clear_ptr = Signal(6)  # the next bit (or, far ahead, word << 2) to clear
        clear_words = Signal()  # far ahead: clear whole words
        slide_left = Signal(6)  # bits (or words) still to clear
        # slide_left != 0 as a flop (the compare ran through the LUT RAM's
        # address, its read and the write data into the window, 7 levels)
        slide_more = Signal()
        clearing, accept = Signal(), Signal()
        # clearing is slide_more itself: it is set only on the way into
        # "Sliding the window", which leaves once it is 0 (ANDed with the
        # state's flop, fanout 26, it was the window's 5-level write data:
        # WD 6 endpoints past 145 MHz, 7.3 ns, in the 9b18dc6 build).
        # The write data a bit at a time as (read AND keep) OR force, keep
        # and force from registers beside the read, so a single LUT follows
        # the LUT RAM's read (its mux of clearing, clear_words and the two
        # bit positions was two: window WD 7.33-7.99 ns on the 25F, seed 5).
        keep = Cat(~clearing | (~clear_words & (clear_ptr[:2] != i)) for i in range(4))
        force = Cat(~clearing & (seq[:2] == i) for i in range(4))
        m.d.comb += [
            clearing.eq(slide_more),
            win_rd.addr.eq(Cat(Mux(clearing, clear_ptr[2:], seq[2:6]), slot)),
            win_wr.addr.eq(win_rd.addr),
            win_wr.en.eq(clearing | accept),
            win_wr.data.eq(Cat(lut4(m, f"window_data{i}", [win_rd.data[i], keep[i], force[i]],
                                    lambda d, k, f: (d & k) | f, instance=builds_lut4s(platform))
                               for i in range(4))),
        ]
        seen_word = Signal(4)
        m.d.sync += seen_word.eq(win_rd.data)

        # Stage 3: the verdict (a seq ahead of the highest is fresh; one
        # behind, inside the window, if its bit is clear).
        fresh = Signal()
        m.d.sync += fresh.eq(0)
        with m.If(seq_zero):
            m.d.sync += fresh.eq(0)
        with m.Elif(seq_ahead):
            m.d.sync += fresh.eq(1)
        with m.Elif(near_behind):
            m.d.sync += fresh.eq(~seen_word.bit_select(seq[:2], 1))

        # A fresh message's window and highest (accept, in "Dispatching"):
        # its bit set (above), the highest moved to it when it is ahead.
        with m.If(accept & seq_ahead):
            m.d.sync += [highest[slot].eq(seq), highest_clear[slot].eq(0)]

        # 3 HELLO intervals of the held HELLO, registered (an add of its own,
        # not a multiplier in front of the deadline's add).
        hello_3_intervals = Signal(_CLOCK_BITS)

        def count(name):
            counter = getattr(self, name)
            m.d.sync += counter.eq(counter + 1)

        # -- the message being sent.  Nothing is copied: a reply is put
        # together from its kind and a few registers (the request it answers
        # is still held on rx) as it is read, and a core message is read in
        # place on from_core, held until it is sent.
        kind = Signal(_Kind)
        out_slot = Signal.like(slot)
        out_anonymous = Signal()  # to a CS without a slot: session 0, its own seq
        # Written in many states: AND-OR loads, not a priority chain of the
        # states' ``If``s (031ee57's worst routed path ended in ``out_slot``
        # through such a chain).
        to_kind_only, to_out_slot, to_out_anonymous = (
            Loads(m, kind, and_or=True), Loads(m, out_slot, and_or=True), Loads(m, out_anonymous, and_or=True))
        # Whether the message goes to a slot's SSMB address (a core message or
        # a replica) and whether it is a replica, flops loaded with kind (the
        # decode of kind ran 4 levels into the transmitter's 96-bit address
        # and more_copies_q: 7.96 and 8.31 ns on the 45F-6 at 9738fc2).
        kind_core, kind_replica = Signal(name="kind_core"), Signal(name="kind_replica")
        to_kind_core, to_kind_replica = Loads(m, kind_core, and_or=True), Loads(m, kind_replica, and_or=True)

        def to_kind(which):
            to_kind_only(which)
            to_kind_core(int(which in (_Kind.CORE, _Kind.REPLICA)))
            to_kind_replica(int(which is _Kind.REPLICA))

        anonymous_seq = Signal(32, init=1)  # the next anonymous message's seq
        # CSMB serials count from 1 (docs/protocol.md, "Serial numbers").
        serial_global = Signal(16, init=1)
        serial_bytype = Array(Signal(16, init=1, name=f"serial_bytype{t.name.lower()}") for t in _CSMB_SENT)
        serial_bump = Signal(len(_CSMB_SENT))  # a CSMB message of that type was taken last clock
        # a slot's (anonymous_take: an anonymous) message was taken last clock, with this seq
        seq_take, anonymous_take, seq_taken = Signal(n), Signal(), Signal(32)
        ack_error = Signal(8)
        # Written in several states: AND-OR loads (a priority chain of the
        # states' Ifs behind "Dispatching"'s branch chain, 5 levels).
        to_ack_error = Loads(m, ack_error, and_or=True)
        auth_response = Signal(64)
        vs_index = Signal(range(self._vs_entries + 1))
        # Written in several states: AND-OR loads (a priority chain of the
        # states' Ifs ran from found_vs into vs_index, 6 levels).
        to_vs_index = Loads(m, vs_index, and_or=True)
        vs_list_count = Signal(range(self._vs_entries + 1))

        # The virtual servers: their ids in LUT RAM (the ADD_VS/DEL_VS walk
        # compares one a clock), the rest in block RAM, read only for a
        # VS_LIST entry (4 of the board's spare EBR instead of ~55 LUT-RAM
        # cells, ~330 LUT4); its output register is the entry the answer
        # carries, two clocks after ``vs_index`` (held by "Reading a list
        # entry").
        m.submodules.vs_ids = vs_ids = memory.Memory(shape=16, depth=self._vs_entries, init=[])
        vs_id_wr = vs_ids.write_port()
        vs_id_rd = vs_ids.read_port(domain="comb")
        m.submodules.vs_memory = vs_memory = BlockRAM(_stored_vs_layout(), max(self._vs_entries, _VS_RAM_DEPTH))
        vs_wr, vs_rd = vs_memory.write, vs_memory.read
        vs_valid = Signal(self._vs_entries)
        found_vs = Signal()  # the walk below found the vs_id at vs_index
        free_vs = Signal(range(self._vs_entries + 1))  # first free entry
        free_none = Signal()  # free_vs not found yet (a flop, not a compare of free_vs)
        m.d.comb += [vs_id_rd.addr.eq(vs_index), vs_rd.addr.eq(vs_index), vs_rd.en.eq(1), vs_rd.out_en.eq(1)]
        vs_listed = data.View(_stored_vs_layout(), vs_rd.data)

        raise_epoch = Signal()
        dump_slot = Signal.like(slot)  # the CS whose DUMP the core is answering
        dump_asked = Signal()
        awaiting_verdict = Signal()
        to_core_pending = Signal()  # the message on rx is offered to the core  # the REPLY/NEWFLOW on rx waits for the core's verdict
        # The other authenticated slots and the lowest of them, registered
        # every clock for "Waiting for the install verdict" (neither slot nor
        # authed changes there; the compares and the pick ran on into
        # copies and out_slot's loads, 7 levels).
        lowest_other = Signal.like(slot)
        others = Signal(n)
        m.d.sync += others.eq(Cat(*authed) & ~(Const(1, n) << slot)[:n])
        for i in reversed(range(n)):
            with m.If(authed[i] & (slot != i)):
                m.d.sync += lowest_other.eq(i)

        # -- active/active: who owns a new flow (docs/redundancy.md)
        # The set and its count are registered, a clock behind the slots:
        # the epoch compare behind them fanned out into the split's
        # remainder step and the miss path's view of the set, the core
        # clock's worst routed path on the Colorlight (docs/boards.md).  The
        # set changes on a HELLO or an authentication, a clock later now; a
        # split (over a hundred clocks) could already straddle a change.
        # Each slot's epoch compare with the newest is a register of its own,
        # a clock older still (authed and the role ANDed with the 16-bit
        # compare and the count behind them were 5 levels into active_set
        # and member_count: the 25F's worst routed path, 8.38 ns, at aa681c4).
        active_members = Signal(n)
        member_count = Signal(range(n + 1))
        at_newest = Signal(n)
        m.d.sync += at_newest.eq(Cat(*(epoch[i] == newest_epoch for i in range(n))))
        in_set = [authed[i] & (role[i] == Role.ACTIVE) & at_newest[i] for i in range(n)]
        m.d.sync += [active_members.eq(Cat(*in_set)), member_count.eq(sum(in_set))]
        members = list(active_members)
        cs_present = Signal(n)  # registered: a clock behind the slots, like the set
        m.d.sync += cs_present.eq(Cat(*(authed[i] | taking_over[i] for i in range(n))))
        m.d.comb += [self.active_set.eq(active_members), self.cs_present.eq(cs_present),
                     self.core_sent_to.eq(out_slot)]
        remainder = Signal(range(max(n, 2)))
        # The owner of the remainder, registered (read a clock after the
        # split's last remainder step: the ranks' cs_id compares and the
        # pick ran on into out_slot, 7 levels).
        owner = Signal.like(slot)
        # Whether slot j ranks before slot i by cs_id, registered (a cs_id
        # changes with a HELLO, long before a split): the 8-bit compares in
        # front of the ranks were 5 levels into owner.
        ranks_before = {}
        for i in range(n):
            for j in range(n):
                if j != i:
                    ranks_before[j, i] = Signal(name=f"ranks_before_{j}_{i}")
                    m.d.sync += ranks_before[j, i].eq((cs_id[j] < cs_id[i]) | ((cs_id[j] == cs_id[i]) & (j < i)))
        for i in range(n):
            before = [members[j] & ranks_before[j, i] for j in range(n) if j != i]
            rank = sum(before) if before else Const(0)
            with m.If(members[i] & (rank == remainder)):
                m.d.sync += owner.eq(i)
        flow = self.from_core.payload.flow
        flow_key = Cat(flow.src_addr[:32], flow.dst_addr[:32], flow.src_port, flow.dst_port, flow.protocol, Const(1, 1))
        assert len(flow_key) == KEY_WIDTH
        padded_key = Cat(flow_key, Const(0, _KEY_BITS - KEY_WIDTH))
        key_feed = Cat(*(padded_key[_KEY_BITS - 8 * (b + 1) + j] for b in range(_KEY_BITS // 8) for j in range(8)))
        m.submodules.key_crc = key_crc = crc.catalog.CRC32_ISO_HDLC(data_width=1).create()
        split_step = Signal(range(_KEY_BITS + 36))
        # The CRC, copied once it is whole and shifted out MSB first: a bit
        # selected by split_step put a 32-way multiplexer and a subtract in
        # front of the remainder step, the core clock's worst path on the
        # Colorlight (docs/boards.md).
        crc_shift = Signal(32)
        # The CRC takes its bit from registers: the key's bit select (a
        # 104-way multiplexer on split_step) is a clock ahead of it.
        feed_valid, feed_start, feed_bit = Signal(), Signal(), Signal()
        # The key, copied while the engine is not splitting (from_core holds
        # it from valid on) and shifted out a bit a clock: a bit selected by
        # split_step was a 104-way multiplexer, 7 levels.
        key_shift = Signal(_KEY_BITS)
        # The split's phases as flops, each loaded a clock ahead from
        # split_step (which counts from 0 in "Splitting the active set" and
        # is 0 elsewhere): the registers above load or shift under a flop,
        # without an enable (split_step's compares were the enable of
        # crc_shift, fanout 32 across the die: 8.6 ns routed, the core
        # clock's worst path in the b4d3dc3 build, and feed_* behind them).
        split_first, feeding, crc_load, dividing, split_end = Signal(), Signal(), Signal(), Signal(), Signal()
        m.d.comb += [key_crc.valid.eq(feed_valid), key_crc.start.eq(feed_start), key_crc.data.eq(feed_bit)]
        m.d.sync += [feed_valid.eq(feeding), feed_start.eq(split_first), feed_bit.eq(key_shift[0])]
        copies = Signal(n)  # slots still owed a copy of the core message
        to_copies = Loads(m, copies, and_or=True)
        next_copy = Signal.like(slot)
        lowest_authed = Signal.like(slot)
        for i in reversed(range(n)):
            with m.If(copies[i]):
                m.d.comb += next_copy.eq(i)
            with m.If(authed[i]):
                m.d.comb += lowest_authed.eq(i)
        expiry_slot = Signal.like(slot)

        # -- the active CS: the lowest authenticated ACTIVE slot at the newest
        # epoch, from the registered set (its epoch compares reached the flow
        # controller's QUERY path through it: the Colorlight's worst core path
        # at a8db240, docs/boards.md)
        active_found = Signal()
        active = Signal.like(slot)
        for i in reversed(range(n)):
            with m.If(active_members[i]):
                m.d.comb += [active_found.eq(1), active.eq(i)]
        m.d.comb += self.active_cs.eq(Mux(active_found, active, n))

        # -- the reply: each kind's message composed on its own from constants
        # and registers (no reply-sized register: the transmitter's word
        # select below picks the kind's word, and a message's constant bytes
        # cost nothing there).  The fields that come through a multiplexer or
        # a compare are registered, valid a clock after kind and out_slot
        # change, as out_seq (the first read comes later).
        hello = body(CsmbHello)
        offered = _version(hello.csmb_vers_major, hello.csmb_vers_minor)
        verdict = Signal(8)
        with m.If(offered > _version(*_HIGHEST)):
            m.d.comb += verdict.eq(ErrorCode.VERS_NEW)
        with m.Elif(offered < _version(*_LOWEST)):
            m.d.comb += verdict.eq(ErrorCode.VERS_OBSOLETE)
        # A slot is taken with the default intervals, and a HELLO whose
        # verdict is NONE then sets the CS's own ("Answering HELLO"): the
        # held HELLO's verdict picks which, so both writes of a deadline
        # are now_ms + hello_3_intervals, one adder and no multiplexer.
        # Its inputs registered first (the version compares, the interval's
        # zero test and the add in one clock were 9.1 ns routed in the
        # 6a07163 build: the held HELLO is in the receiver's registers, across
        # the port); the HELLO is held for the lookup's clocks before the
        # deadline is written, so this has settled.
        # The HELLO's interval as the answer echoes it, registered as the
        # challenge is: read from the receiver's register, whose flops sit
        # wherever its shift chain is placed, it was a 5 ns net into the
        # reply's word (the 25F's worst core path at e5daf14).  The answer is
        # read clocks after the HELLO is offered, and a HELLO is not rotated.
        hello_interval_echo = Signal.like(hello.hello_interval_ms, name="hello_interval_echo")
        m.d.sync += hello_interval_echo.eq(hello.hello_interval_ms)
        # The interval is the answer's echo register (above); an interval of 0
        # counts as 1, told by a flag of its own: as ``Mux(zero, 1, interval)``
        # into interval_q the zero test was a 15-bit reset across the die
        # from the receiver's register (interval_q LSR 8.17 ns on the 25F,
        # syn_c seed 3).
        interval_zero, verdict_none = Signal(name="interval_zero"), Signal()
        m.d.sync += [interval_zero.eq(hello.hello_interval_ms == 0),
                     verdict_none.eq(verdict == ErrorCode.NONE)]
        m.d.sync += hello_3_intervals.eq(
            Mux(verdict_none, Mux(interval_zero, 3, hello_interval_echo + (hello_interval_echo << 1)),
                3 * _DEFAULT_HELLO_MS))
        # The deadline a HELLO sets, registered too: the add in front of
        # both writes of each slot's deadline was 7.8 ns routed (deadline0/1,
        # 36 endpoints past 137.5 MHz in the 329f034 build).  The held HELLO
        # is there for the lookup's clocks before either write, so this has
        # settled; now_ms a clock old is at most a millisecond early.
        deadline_value = Signal(_CLOCK_BITS)
        m.d.sync += deadline_value.eq(now_ms + hello_3_intervals)
        # The held challenge, registered (it is held for the whole
        # authentication): the bus mux on the receiver's register, across
        # the port, was in front of the hash's 16-way byte select (secret_q:
        # 2 endpoints past 145 MHz, 7.5 ns, in the 9b18dc6 build) and the
        # answer's words.
        challenge = Signal(64, name="challenge_q")
        m.d.sync += challenge.eq(Mux(is_csmb, body(CsmbAuthChallenge).challenge, body(SsmbAuthChallenge).challenge))
        nonce_q, verdict_q = Signal(64), Signal(8)
        active_q, vs_count_q = Signal(), Signal(range(self._vs_entries + 1))
        # What "Answering HELLO" acts on, registered (the held HELLO's role
        # bit and version compare ran on into newest_epoch's enable: the
        # Colorlight's worst core path at 80f4b98, 7 levels).
        hello_taken, hello_active = Signal(), Signal()
        m.d.sync += [
            hello_taken.eq(is_csmb & (verdict == ErrorCode.NONE)),
            hello_active.eq(hello.role[0] == Role.ACTIVE),
        ]
        m.d.sync += [
            nonce_q.eq(nonce[out_slot]),
            verdict_q.eq(verdict),
            active_q.eq(active_found),
        ]
        # The count of valid entries in two registered steps, four entries
        # a partial sum first (the whole count in one clock was 5 levels); a
        # VS_LIST reads it long after the last write.
        vs_partial = [Signal(range(5), name=f"vs_partial{k}") for k in range((self._vs_entries + 3) // 4)]
        m.d.sync += [vs_partial[k].eq(sum(vs_valid[i] for i in range(4 * k, min(4 * k + 4, self._vs_entries))))
                     for k in range(len(vs_partial))]
        m.d.sync += vs_count_q.eq(sum(vs_partial))

        replies = []  # (kind, on CSMB or None: either bus, class, its signed bytes)

        def compose(which, on_csmb, cls):
            value = Signal(message_layout(cls).size, name=f"reply_{cls.__name__}")
            replies.append((which, on_csmb, cls, value))
            view = data.View(message_layout(cls), value)
            m.d.comb += [
                view.vers_major.eq(PROTOCOL_VERSION[0]),
                view.vers_minor.eq(PROTOCOL_VERSION[1]),
                view.msg_type.eq(cls.TYPE),
            ]
            return view

        def hello_answer(view):
            """What every HELLO answer (either bus) says: our highest
            versions, this association's nonce, where SSMB reaches us."""
            return [
                view.csmb_vers_major.eq(_HIGHEST[0]),
                view.csmb_vers_minor.eq(_HIGHEST[1]),
                view.ssmb_vers_major.eq(_HIGHEST[0]),
                view.ssmb_vers_minor.eq(_HIGHEST[1]),
                view.nonce.eq(nonce_q),
                view.ssmb_addr.eq(_IPV4_MAPPED | self.dfs_ip),
                view.ssmb_port.eq(SSMB_UDP_PORT),
            ]

        view = compose(_Kind.HELLO, True, CsmbHello)
        m.d.comb += hello_answer(view)
        m.d.comb += [
            view.error.eq(verdict_q),
            view.csmb_vers_major.eq(Mux(verdict_q == ErrorCode.VERS_OBSOLETE, _LOWEST[0], _HIGHEST[0])),
            view.csmb_vers_minor.eq(Mux(verdict_q == ErrorCode.VERS_OBSOLETE, _LOWEST[1], _HIGHEST[1])),
            view.role.eq(Role.ACTIVE),
            view.flags.eq(Mux(active_q, Flag.ACTIVE_CS, 0)),
            view.hello_interval_ms.eq(hello_interval_echo),
        ]
        m.d.comb += hello_answer(compose(_Kind.HELLO, False, SsmbHello))
        for cls, on_csmb in ((CsmbAuthResponse, True), (SsmbAuthResponse, False)):
            view = compose(_Kind.AUTH_RESPONSE, on_csmb, cls)
            m.d.comb += [
                view.challenge.eq(challenge),  # the same bytes on either bus
                # The tag's wire bytes are the little-endian
                # integer; the field holds them big-endian.
                view.response.eq(Cat(*(auth_response.word_select(7 - b, 8) for b in range(8)))),
            ]
        view = compose(_Kind.VS_LIST, None, VsList)
        m.d.comb += [
            view.flags.eq(vs_listed.flags),
            *(getattr(view.vs, name).eq(getattr(vs_listed, name))
              for name, _ in block_layout(VirtualServer) if name != "virt_addr"),
            view.vs.virt_addr.eq(_IPV4_MAPPED | vs_listed.virt_addr),
            view.list_index.eq(vs_list_count),
            view.list_count.eq(vs_count_q),
        ]
        view = compose(_Kind.ACK, None, CsmbAck)
        m.d.comb += [
            view.error.eq(ack_error),
            view.acked_type.eq(cur.msg_type),
            view.acked_serial.eq(hdr.serial[16:]),  # CSMB: serial_global is the high half
        ]
        def per_reply(assign):
            """``assign(cls, value)`` for the reply of ``kind`` on the message's bus."""
            with m.Switch(kind):
                for which in (_Kind.HELLO, _Kind.AUTH_RESPONSE, _Kind.VS_LIST, _Kind.ACK):
                    with m.Case(which):
                        for k, on_csmb, cls, value in replies:
                            if k == which:
                                with m.If(is_csmb == on_csmb if on_csmb is not None else 1):
                                    m.d.comb += assign(cls, value)

        reply_len = Signal(range(MAX_SENT_BYTES + 1))
        per_reply(lambda cls, value: reply_len.eq(cls.wire_size() - TAG_SIZE))

        def start_reply(which):
            """Answer the message on rx, to its sender (out_slot and
            out_anonymous: loaded under `out_slot_from_slot`, below)."""
            to_kind(which)


        # -- what goes to the transmitter: the reply or the core message, with
        # the header fields every message shares stamped in
        is_replica = Signal()
        if self._install_verdicts:
            m.d.comb += is_replica.eq(kind_replica)
        is_core = Signal()  # to a slot's SSMB address
        m.d.comb += is_core.eq(kind_core)
        # The core message's length and whether it carries a session,
        # registered every clock (from_core holds them from valid on, and
        # kind turns CORE two clocks later at the earliest): the flow
        # controller's message kind ran on through them into the stamp and
        # the transmitter's IPv4 length, 4-5 levels across blocks.
        core_length, core_own_session = Signal.like(self.from_core.payload.length), Signal()
        m.d.sync += [core_length.eq(self.from_core.payload.length),
                     core_own_session.eq(self.from_core.payload.session == 0)]
        out_len = Mux(is_replica, MAX_RECEIVED_BYTES, Mux(kind == _Kind.CORE, core_length, reply_len))
        out_csmb = Signal()
        m.d.comb += out_csmb.eq(~is_core & (((kind != _Kind.HELLO) & (kind != _Kind.AUTH_RESPONSE)) | is_csmb))
        # Registered: stable a clock after out_slot/tx_seq change, and the
        # transmitter asks for the header no sooner than two clocks after.
        out_seq = Signal(32)
        # The next seqs are kept incremented (the +1 is taken when a message
        # goes): out_slot's mux alone in front of it (with the add, out_seq
        # was 12 endpoints past 145 MHz, 7.3 ns, in the 9b18dc6 build).
        m.d.sync += out_seq.eq(Mux(out_anonymous, anonymous_seq, tx_seq[out_slot]))
        # A CSMB message the DFS sends is a reply; its kind is its by-type serial's index.
        assert all(_Kind[t.name].value == i for i, t in enumerate(_CSMB_SENT))
        bytype = kind.as_value()[:2]
        # The header fields every message has stamped in; the other bytes
        # come from the message itself.  The slot's session while it is
        # authenticated (AUTH_RESPONSE: the new one, set by now), else 0 (a
        # reply's own); a core message may carry its own session.
        own_session = ((kind != _Kind.CORE) | core_own_session) & ~out_anonymous & authed[out_slot]
        stamp = Signal(8 * HEADER_SIZE)
        stamp_hdr = data.View(header_layout(), stamp)
        # The stamped length registered like out_seq (kind's decode, the
        # lengths' mux and the add ran on into stamp_q's word select, 5
        # levels: 3 endpoints past 145 MHz, 7.4 ns, in the 9b18dc6 build).
        stamp_length = Signal.like(stamp_hdr.msg_length, name="stamp_length")
        m.d.sync += stamp_length.eq(out_len + TAG_SIZE)
        m.d.comb += [
            stamp_hdr.msg_length.eq(stamp_length),
            stamp_hdr.epoch.eq(newest_epoch),
            stamp_hdr.serial.eq(Cat(serial_bytype[bytype], serial_global)),
            stamp_hdr.session.eq(session[out_slot]),
            stamp_hdr.seq.eq(out_seq),
        ]

        def header_bytes(name):
            """Wire byte numbers of header field ``name`` (first byte on top)."""
            field = header_layout()[name]
            return range(HEADER_SIZE - (field.offset + field.width) // 8, HEADER_SIZE - field.offset // 8)

        # Whether each header byte goes out stamped: 1, 0, or a flag (whether
        # the serial and the session are stamped, registered like out_seq:
        # authed[out_slot] and the kind's decode ran through the stamped
        # bit's select into the byte's lane flops, 5 levels).
        stamps_serial, stamps_session = Signal(name="stamps_serial"), Signal(name="stamps_session")
        m.d.sync += [stamps_serial.eq(out_csmb), stamps_session.eq(own_session)]
        stamped = [Const(0, 1)] * HEADER_SIZE
        for name, when in (("msg_length", 1), ("epoch", 1), ("seq", 1), ("serial", stamps_serial),
                           ("session", stamps_session)):
            for k in header_bytes(name):
                stamped[k] = Value.cast(when)
        m.d.comb += [
            self.tx.payload.bus.eq(out_csmb),
            self.tx.payload.length.eq(out_len),
        ]
        # Registered like out_seq: the transmitter reads them for the IPv4
        # checksum and the headers, several clocks after it takes the
        # message (the slot multiplexer on out_slot, fanout 231, ran on into
        # its 42-way header byte select: 7 levels).
        m.d.sync += [
            self.tx.payload.dst_mac.eq(Mux(is_core, cs_mac[out_slot], cur.src_mac)),
            self.tx.payload.dst_ip.eq(Mux(is_core, ssmb_ip[out_slot], cur.src_ip)),
            self.tx.payload.dst_port.eq(Mux(is_core, ssmb_port[out_slot], cur.src_port)),
        ]

        # The byte the transmitter asks for, through two registers (it answers
        # READ_LATENCY = 2 clocks later): a stamped header byte, or the
        # message's own -- the reply's, the core message's, or for a replica
        # the receiver's top byte (it rotates raw a byte per read: no 152-way
        # byte multiplexer).  The first clock selects the 8-byte word holding
        # the byte (a replica's byte stands in every lane), the second the
        # byte in the word: the index's fan-out and the selection tree are
        # split over two clocks.  A core message's word is the core's own
        # first clock (from_core_read: its register, from the index alone).
        assert READ_LATENCY == 2
        index = self.tx_read.index
        # The core zeroes its word while another kind is read (kind is a register).
        m.d.comb += [self.from_core_read.index.eq(index), self.from_core_read.en.eq(kind == _Kind.CORE)]

        # The words are selected by the reader's one-hot word_at (an AND-OR
        # of flops; the index's word select by a case per (kind, bus, word)
        # was 7 levels, into word_q and the core's word register).
        word_at = self.tx_read.word_at
        m.d.comb += self.from_core_read.word_at.eq(word_at[:len(self.from_core_read.word_at)])

        def word_of(value, nbytes):
            """The 8-byte word of ``value`` holding byte ``index``."""
            words = wire_words(value, nbytes)
            return onehot_mux(word_at[:len(words)], words)

        # The reply's word: its kind's message's word on the message's bus
        # (an AND-OR over mostly constant bytes), each reply's select a
        # flop decoded from kind and the bus every clock (kind changes as
        # the message is offered; the transmitter's first read is two
        # clocks later); 0 for a core message (no reply's select is up).
        # Two halves of the AND-OR, the even and the odd words, each into a
        # register of its own and ORed in the second clock (as one, its 41
        # words ran 5 levels deep from word_at into word_q: 18 endpoints
        # past 145 MHz, 7.7 ns, in the 9b18dc6 build).
        reply_words = [Const(0, 64), Const(0, 64)]
        for which, on_csmb, _, value in replies:
            reads = Signal(name=f"reads_{value.name}")
            m.d.sync += reads.eq((kind == which) & ((csmb_q == on_csmb) if on_csmb is not None else 1))
            for w, word in enumerate(wire_words(value, len(value) // 8)):
                reply_words[w % 2] = reply_words[w % 2] | Mux(reads & word_at[w], word, 0)
        replica_byte = Const(0, 8)
        if self._install_verdicts:
            assert len(cur.raw) == 8 * MAX_RECEIVED_BYTES  # a REPLY/NEWFLOW fills raw exactly
            # The receiver rotates raw a clock after it is asked: while the
            # last ask's rotation is pending, the next byte is below the top.
            rotating = Signal()
            m.d.sync += rotating.eq(self.rx_rotate)
            rx_top = Mux(rotating, cur.raw[-16:-8], cur.raw[-8:])
            reads_replica = Signal()  # registered like the replies' selects
            m.d.sync += reads_replica.eq(is_replica)
            # a byte of its own, ORed in after the lane select (it stands
            # in every lane: a mux in front of all 64 bits of the word)
            replica_byte = Mux(reads_replica, rx_top, 0)
            m.d.comb += self.rx_rotate.eq(self.tx_read.en & is_replica)
        # The byte is a stamped header byte: by its word (word_at, one-hot)
        # and lane (the index's low bits), each header word's lanes a
        # constant or a flag -- no compare of the index with HEADER_SIZE
        # (a carry chain) and no 24-way select behind it (session
        # stamp_lane/own_lane 7.35-7.51 ns on the 25F at syn_j).
        assert HEADER_SIZE % 8 == 0
        lane_is = [index[:3] == k for k in range(8)]
        stamp_in_lane = [Cat(word_at[w] & stamped[8 * w + k] for w in range(HEADER_SIZE // 8)).any()
                         for k in range(8)]
        stamp_at = Cat(lane_is[k] & stamp_in_lane[k] for k in range(8))  # the byte's lane, if stamped
        use_stamp = stamp_at.any()
        word_even_q, word_odd_q = Signal(64, name="word_even_q"), Signal(64, name="word_odd_q")
        stamp_q, replica_q = Signal(64, name="stamp_q"), Signal(8, name="replica_q")
        # The byte's lane one-hot, one set for the stamp's and one for the
        # message's own (the lane's binary select behind the stamp's mux,
        # fanout 96, was 5 levels into the byte once the word came in two).
        stamp_lane, own_lane = Signal(8, name="stamp_lane"), Signal(8, name="own_lane")
        own_q, en_q = Signal(name="own_q"), Signal(name="en_q")  # own_q: own_lane has a bit up
        m.d.sync += en_q.eq(self.tx_read.en)
        with m.If(self.tx_read.en):
            m.d.sync += [
                word_even_q.eq(reply_words[0]),
                word_odd_q.eq(reply_words[1]),
                replica_q.eq(replica_byte),
                stamp_q.eq(word_of(stamp, HEADER_SIZE)),
                stamp_lane.eq(stamp_at),
                own_lane.eq(Cat(lane_is[k] & ~stamp_in_lane[k] for k in range(8))),
                own_q.eq(~use_stamp),
            ]
        # The reply's words are 0 for a core message, the core's word 0 for
        # the others, the replica's byte 0 but for a replica.
        own_word = word_even_q | word_odd_q | self.from_core_read.word
        with m.If(en_q):
            m.d.sync += self.tx_read.byte.eq(
                onehot_mux(stamp_lane, [stamp_q.word_select(k, 8) for k in range(8)])
                | onehot_mux(own_lane, [own_word.word_select(k, 8) for k in range(8)])
                | Mux(own_q, replica_q, 0))

        # ... and what changes once the transmitter has taken it
        sent = [
            anonymous_take.eq(out_anonymous),
            seq_take.eq(Mux(out_anonymous, 0, (Const(1, n) << out_slot)[:n])),
            seq_taken.eq(out_seq),
            serial_bump.eq(Mux(out_csmb, (Const(1, len(_CSMB_SENT)) << bytype)[:len(_CSMB_SENT)], 0)),
        ]
        # The serials count a clock after the take, from these flops: the
        # kind decode and the take's condition in front of the 16-bit
        # counters' enables were 9.0 ns routed (serial_bytype*, 62 endpoints
        # past 137.5 MHz in the 329f034 build).  The next stamp is read
        # clocks later (the transmitter asks for the header two clocks after
        # Sending at the soonest, and a message takes a dozen).
        m.d.sync += serial_bump.eq(0)  # the take's statements (below) win
        # The slot's sequence number likewise, from a flop a slot and the
        # number taken (tx_seq1: 17 endpoints past 137.5 MHz, 7.6 ns, with
        # out_slot's decode and the take's condition in front).  out_seq
        # follows a clock later still, before any next message's stamp.
        # The anonymous seq likewise (it moved in the take's clock before).
        m.d.sync += [seq_take.eq(0), anonymous_take.eq(0)]
        for i in range(n):
            with m.If(seq_take[i]):
                m.d.sync += tx_seq[i].eq(seq_taken + 1)
        with m.If(anonymous_take):
            m.d.sync += anonymous_seq.eq(seq_taken + 1)
        with m.If(serial_bump != 0):
            m.d.sync += serial_global.eq(serial_global + 1)
        for t in range(len(_CSMB_SENT)):
            with m.If(serial_bump[t]):
                m.d.sync += serial_bytype[t].eq(serial_bytype[t] + 1)

        # -- SipHash input for authentication: label | challenge | nonce
        # The label ends at byte 31 of the count, so challenge | nonce always
        # sit at 32..47: the label comes from a small ROM on (which label,
        # index) and the rest from a 16-way byte select, instead of a select
        # over each whole input.
        assert len(SESSION_LABEL) <= 32 and len(AUTH_LABEL) <= 32
        hash_index = Signal(6)
        # hash_index's byte in its 8-byte word, one-hot, moved with it: the
        # secret's selects are AND-ORs of its flops (the index's bits, shared
        # with the label ROM's decode, were 5 levels into secret_q).
        hash_at = Signal(8, init=1, name="hash_at")

        def to_hash_index(value):
            return [hash_index.eq(value), hash_at.eq(1 << (value % 8))]
        hash_for_session = Signal()
        # The label ROM in two halves, bytes 0-15 of the count and 16-31,
        # each a constant table on (which label, index[:4]) read by
        # word_select: a 5-input function of flops, the half picked with the
        # byte.  One ROM on six inputs ran from hash_index into label_q (6
        # levels), and a case per entry shared its decodes with last_q's
        # compare (5).
        tables = [bytearray(32), bytearray(32)]
        for for_session, label in ((0, AUTH_LABEL), (1, SESSION_LABEL)):
            for k, b in enumerate(label):
                i = 32 - len(label) + k
                tables[i // 16][16 * for_session + i % 16] = b
        label_half = [Const(int.from_bytes(t, "little"), 256).word_select(Cat(hash_index[:4], hash_for_session), 8)
                      for t in tables]
        secret_bytes = Cat(*(challenge.word_select(7 - b, 8) for b in range(8)),
                           *(nonce_q.word_select(7 - b, 8) for b in range(8)))
        # The byte is offered from a register two clocks after hash_index:
        # the ROM halves and the secret's two 8-way selects (challenge,
        # nonce) each into a register of its own, then the pick among them
        # (in one clock they ran on into the byte's register, 7 levels; one
        # 16-way select of 2:1 muxes was 5 levels into its register): a
        # byte every three clocks, 288 clocks an authentication.
        label_q = [Signal(8, name=f"label_q{h}") for h in range(2)]
        secret_q = [Signal(8, name=f"secret_q{h}") for h in range(2)]
        pick_secret, pick_high, last_q = Signal(name="pick_secret"), Signal(name="pick_high"), Signal(name="last_q")
        pick_nonce = Signal(name="pick_nonce")  # the secret's second half (the nonce)
        m.d.sync += [label_q[0].eq(label_half[0]), label_q[1].eq(label_half[1]),
                     secret_q[0].eq(onehot_mux(hash_at, [secret_bytes.word_select(b, 8) for b in range(8)])),
                     secret_q[1].eq(onehot_mux(hash_at, [secret_bytes.word_select(8 + b, 8) for b in range(8)])),
                     pick_secret.eq(hash_index[5]), pick_high.eq(hash_index[4]), pick_nonce.eq(hash_index[3]),
                     last_q.eq(hash_index == 47)]
        hash_byte, hash_byte_last, hash_byte_ok, hash_settling = Signal(8), Signal(), Signal(), Signal()
        m.d.sync += [hash_byte.eq(Mux(pick_secret, Mux(pick_nonce, secret_q[1], secret_q[0]),
                                      Mux(pick_high, label_q[1], label_q[0]))),
                     hash_byte_last.eq(last_q), hash_byte_ok.eq(0), hash_settling.eq(0)]
        # Driven in every state (only valid in "Hashing"): no AND a bit.
        m.d.comb += [siphash.sink.payload.data.eq(hash_byte), siphash.sink.payload.last.eq(hash_byte_last)]

        # Epoch adoption (docs/redundancy.md): the slot keeps the highest
        # epoch it used; only an ACTIVE-role slot raises the DFS's.
        m.d.comb += raise_epoch.eq(slot_active & epoch_ahead)
        # The slot's epoch takes the message's where a state raises
        # epoch_to_hdr: one write of one value under an OR of flags (the
        # states' writes of Mux(slot_epoch_ahead, ...) in a priority chain
        # ran on from slot into the epochs, 7 levels).
        epoch_to_hdr = Signal()
        # ... and the DFS's newest epoch where a state raises raise_newest.
        raise_newest = Signal()

        # The slot table is written under a flop a slot, set a clock ahead
        # (claim, hello_we, deadline_we) or a clock before the write
        # (epoch_we, newest_we, session_we: the epochs and the session are
        # read by the next message's lookup and by the answer's header, two
        # clocks after "Sending" at the soonest): each decode of the written
        # slot in front of the registers' enables, fanout 16-32 each, was
        # 7.5-8.4 ns routed (deadline0/1, epoch0/1, newest_epoch, session0/1,
        # tx_seq1: 186 endpoints past 137.5 MHz in the b4d3dc3 build).
        def one_hot(index):
            return (Const(1, n) << index)[:n]

        claim = Signal(n)  # "Dispatching" takes slot i for a new CS (the flop is up in that clock)
        claim_next = Signal(n)  # claim's next value
        # claim's copies for the wide fields (a flop of fanout ~200 a slot
        # left nonce0/1, cs_mac0 and cs_ip0's enables 8.0-8.4 ns routed in
        # the 6a07163 build, their slot decode then still in front)
        claim_nonce, claim_mac, claim_addr = (flop_copy(m, claim_next, name=f"claim_{what}")
                                              for what in ("nonce", "mac", "addr"))
        hello_we = Signal(n)  # "Answering HELLO" sets slot i's CS fields (likewise)
        deadline_we = Signal(n)  # either of them, in the same clock
        epoch_we, newest_we, session_we = Signal(n), Signal(), Signal(n)  # a clock after the state
        # The hash's session as taken, with its zero test (0 means "no
        # session": it becomes 1) applied as it is written (the test and the
        # mux behind the hash's tag were 5 levels into new_session_q).
        new_session_q, new_session_zero = Signal(32), Signal()
        m.d.sync += [epoch_we.eq(Mux(epoch_to_hdr, one_hot(slot), 0)),
                     newest_we.eq(raise_newest), session_we.eq(0)]
        for i in range(n):
            with m.If(claim[i]):
                m.d.sync += [
                    in_use[i].eq(1),
                    authed[i].eq(0),
                    taking_over[i].eq(0),
                    highest_clear[i].eq(1),
                    tx_seq[i].eq(1),
                    epoch[i].eq(0),
                    role[i].eq(Role.ACTIVE),
                ]
            with m.If(claim_mac[i]):
                m.d.sync += cs_mac[i].eq(cur.src_mac)
            with m.If(claim_addr[i]):
                m.d.sync += [cs_ip[i].eq(cur.src_ip), cs_port[i].eq(cur.src_port)]
            with m.If(claim_nonce[i]):
                m.d.sync += nonce[i].eq(nonce_state)
            with m.If(hello_we[i]):
                m.d.sync += [
                    role[i].eq(hello.role[0]),
                    cs_id[i].eq(hello.cs_id),
                    ssmb_ip[i].eq(hello.ssmb_addr[:32]),
                    ssmb_port[i].eq(hello.ssmb_port),
                ]
            with m.If(deadline_we[i]):
                m.d.sync += deadline[i].eq(deadline_value)
            with m.If(epoch_we[i]):  # never with claim[i]: a clock after a state that is not "Sliding"
                m.d.sync += epoch[i].eq(hdr_epoch_q)
            with m.If(session_we[i]):
                m.d.sync += session[i].eq(Mux(new_session_zero, 1, new_session_q))
        with m.If(newest_we):
            m.d.sync += newest_epoch.eq(hdr_epoch_q)

        # The core message's type decoded into registers every clock: from_core
        # holds the message from valid on, and "Choosing the recipients" is
        # a clock after valid is first seen (the decodes ran on into
        # out_slot, kind and copies, 7 levels).
        core_type = self.from_core.payload.msg_type
        core_to_all, core_dump_answer, core_is_dump, core_is_query = Signal(), Signal(), Signal(), Signal()
        m.d.sync += [
            # DELETE and RESET go to every authenticated CS.
            core_to_all.eq((core_type == SsmbType.DELETE) | (core_type == SsmbType.RESET)),
            # A DUMP's answers (STATS without error, DUMP END) go to the CS
            # that asked, standby or not; a REAP's STATS (CONNALIVE) to the
            # owner as usual.
            core_dump_answer.eq(((core_type == SsmbType.STATS) & (self.from_core.payload.error == ErrorCode.NONE))
                                | (core_type == SsmbType.DUMP)),
            core_is_dump.eq(core_type == SsmbType.DUMP),
            core_is_query.eq(core_type == SsmbType.QUERY),
        ]

        # The held request decoded into registers (settled, like the lookup
        # pipeline, long before "Executing a request"; the type and item
        # compares ran on into ack_error and the state flops, 7 levels).
        # Two clocks of them: first each compare alone from cur, then their
        # combinations.  cur is the receiver's message register, spread over
        # the die, and the compares and their ANDs from it in one clock were
        # 7.3-7.6 ns (config_known, config_dfs_*).
        def decoded(name, value):
            flag = Signal(name=name)
            m.d.sync += flag.eq(value)
            return flag

        # The compares with constants as LUT4 trees on ECP5 (two levels for
        # 16 bits): ABC chained the seven item compares through each other,
        # 5 levels behind a 4.9 ns net from cur (item_idle_timeout_s_q,
        # 9.06 ns, the 25F's worst core path at 3d04f7a, seed 2).
        ecp5 = builds_lut4s(platform)

        def is_const(name, value, const):
            return decoded(name, lut_eq_const(m, f"{name}_eq", value, int(const), instance=ecp5))

        is_type = {t: is_const(f"is_{t.name.lower()}_q", cur.msg_type, t)
                   for t in (CsmbType.ADD_VS, CsmbType.DEL_VS, CsmbType.VS_LIST, CsmbType.CONFIG)}
        config_item = body(Config).item
        known_items = (ConfigItem.DFS_ADDR, ConfigItem.DFS_MAC, ConfigItem.IDLE_TIMEOUT_S, ConfigItem.CS_ADDR,
                       ConfigItem.DEFAULT_GATEWAY, ConfigItem.SSMB_STANDBY_ADDR, ConfigItem.HELLO_INTERVAL_MS)
        item_is = {item: is_const(f"item_{item.name.lower()}_q", config_item, item) for item in known_items}
        # An IPv4 virtual address (::ffff:a.b.c.d), in 16-bit pieces: a LUT
        # level each instead of four for the 96-bit compare.
        mapped_high = body(AddVs).vs.virt_addr[32:]
        mapped_parts = [is_const(f"mapped_q{k}", mapped_high[16 * k:16 * k + 16], 0xFFFF if k == 0 else 0)
                        for k in range(len(mapped_high) // 16)]
        add_flags_ok = decoded("add_flags_ok_q", (hdr.flags & int(PROXY_FLAGS)) == 0)
        add_protocol_ok = decoded("add_protocol_ok_q",
                                  (body(AddVs).vs.protocol == 6) | (body(AddVs).vs.protocol == 17))
        is_config = is_type[CsmbType.CONFIG]
        request_is_vs = decoded("request_is_vs", is_type[CsmbType.ADD_VS] | is_type[CsmbType.DEL_VS])
        request_is_list = decoded("request_is_list", is_type[CsmbType.VS_LIST])
        is_add = decoded("is_add", is_type[CsmbType.ADD_VS])
        add_supported = decoded("add_supported", add_flags_ok & add_protocol_ok & Cat(*mapped_parts).all())
        config_dfs_addr = decoded("config_dfs_addr", is_config & item_is[ConfigItem.DFS_ADDR])
        config_dfs_mac = decoded("config_dfs_mac", is_config & item_is[ConfigItem.DFS_MAC])
        config_idle = decoded("config_idle", is_config & item_is[ConfigItem.IDLE_TIMEOUT_S])
        config_known = decoded("config_known", is_config & Cat(*item_is.values()).any())

        # Whether "Dispatching" adopts the message's epoch (its stale-epoch
        # and its accepting branches), registered from the settled lookup
        # (the branches' conditions in a row ran on into newest_epoch's
        # enable, 7 levels); valid from "Sliding the window" on.
        adopts, fsm_dispatching = Signal(), Signal()
        m.d.sync += adopts.eq(found & fresh & ~is_hello & ~is_challenge & session_ok & ~(read_only & ~csmb_q))
        with m.If(fsm_dispatching & adopts):
            m.d.comb += [raise_newest.eq(raise_epoch), epoch_to_hdr.eq(slot_epoch_ahead)]

        # What "Sending" does once the frame is out, decoded from kind and
        # copies into flops every clock: the transmitter's ready comes a
        # whole frame after either last changed (the decodes ran on through
        # rx.ready into the receiver's state, 7 levels).
        more_copies_q, sending_replica, core_q = Signal(name="more_copies_q"), Signal(name="sending_replica"), Signal()
        m.d.sync += [more_copies_q.eq(is_core & (copies != 0)), sending_replica.eq(is_replica),
                     core_q.eq(kind == _Kind.CORE)]
        # The held message's type decoded for its hand-over to the core
        # (settled: to_core is offered from "Passing to the core" on), and
        # rx released a clock after the core took it, from a flop (the core's
        # ready and the type compare ran on into the receiver's state).
        to_core_dump, to_core_replicates, release_rx = Signal(), Signal(), Signal()
        m.d.sync += [
            to_core_dump.eq(cur.msg_type == SsmbType.DUMP),
            to_core_replicates.eq((cur.msg_type == SsmbType.REPLY) | (cur.msg_type == SsmbType.NEWFLOW)),
            release_rx.eq(0),
        ]
        with m.If(release_rx):
            m.d.comb += self.rx.ready.eq(1)
        # "Dispatching"'s branch decided a clock ahead into flops, from the
        # settled lookup (as `adopts`: valid from "Sliding the window" on,
        # and "Dispatching" is only entered from there): its chain of
        # conditions ran on into ack_error, the counters and the state
        # flops (ack_error 8 endpoints past 145 MHz, 7.8 ns, in the 9b18dc6
        # build).  In the chain's order: a HELLO from a new CS takes a slot
        # (then it is looked up again) or finds none; an unknown sender is
        # not authenticated; a replayed message is dropped; then HELLO, the
        # challenge, a bad session, SSMB DUMP (any authenticated CS, any
        # epoch), fencing (only the active set changes state), the rest.
        # Two stages: what the branch is once the message is found and
        # fresh (from the registers that settle first), then the flags with
        # found and fresh (the last to settle: a clock before "Sliding the
        # window" after a slot is taken); in one stage it was 6 levels.
        new_cs = Signal(name="if_new_cs")  # a HELLO from a CS without a slot
        if_unknown_done, if_unknown_ack = Signal(name="if_unknown_done"), Signal(name="if_unknown_ack")
        if_hello, if_challenge = Signal(name="if_hello"), Signal(name="if_challenge")
        if_bad_session, if_stale = Signal(name="if_bad_session"), Signal(name="if_stale")
        if_done, if_ack = Signal(name="if_done"), Signal(name="if_ack")
        if_core, if_execute = Signal(name="if_core"), Signal(name="if_execute")
        if_notauth, if_ack_stale = Signal(name="if_notauth"), Signal(name="if_ack_stale")
        beyond_auth = ~is_hello & ~is_challenge
        dump = beyond_auth & session_ok & read_only & ~csmb_q
        stale = beyond_auth & session_ok & ~read_only & (~slot_active | epoch_behind)
        rest = beyond_auth & session_ok & ~(read_only & ~csmb_q) & ~(~read_only & (~slot_active | epoch_behind))
        bad_session = beyond_auth & ~session_ok
        m.d.sync += [
            new_cs.eq(csmb_q & is_hello & ~found),
            # not found, and not a new CS's HELLO
            if_unknown_done.eq(~(csmb_q & is_hello) & ~is_request),
            if_unknown_ack.eq(~(csmb_q & is_hello) & is_request),
            # found and fresh
            if_hello.eq(is_hello),
            if_challenge.eq(~is_hello & is_challenge),
            if_bad_session.eq(bad_session),
            if_stale.eq(stale),
            if_done.eq((bad_session & ~is_request) | (stale & ~csmb_q)),
            if_ack.eq((bad_session & is_request) | (stale & csmb_q)),
            if_notauth.eq(bad_session & is_request),
            if_ack_stale.eq(stale & csmb_q),
            if_core.eq(dump | (rest & ~csmb_q)),
            if_execute.eq(rest & csmb_q),
        ]
        go_relookup, go_done, go_ack, go_hello, go_hash, go_core, go_execute, go_accept, go_notauth, go_stale = (
            Signal(name=f"go_{what}") for what in ("relookup", "done", "ack", "hello", "hash", "core", "execute",
                                                    "accept", "notauth", "stale"))
        accepted = found & fresh
        unknown = ~new_cs & ~found
        m.d.sync += [
            go_relookup.eq(new_cs & any_free),
            go_done.eq((new_cs & ~any_free) | (~found & if_unknown_done) | (found & ~fresh) | (accepted & if_done)),
            go_ack.eq((~found & if_unknown_ack) | (accepted & if_ack)),
            go_hello.eq(accepted & if_hello),
            go_hash.eq(accepted & if_challenge),
            go_core.eq(accepted & if_core),
            go_execute.eq(accepted & if_execute),
            go_accept.eq(accepted),
            go_notauth.eq((~found & if_unknown_ack) | (accepted & if_notauth)),
            go_stale.eq(accepted & if_ack_stale),
        ]
        went = {name: Signal(name=f"went_{name}") for name in
                ("no_slot", "not_authenticated", "replayed", "bad_session", "stale_epoch", "requests")}
        m.d.sync += [
            went["no_slot"].eq(new_cs & ~any_free),
            went["not_authenticated"].eq(unknown),
            went["replayed"].eq(found & ~fresh),
            went["bad_session"].eq(accepted & if_bad_session),
            went["stale_epoch"].eq(accepted & if_stale),
            went["requests"].eq(accepted & if_execute),
        ]
        lookup_wait = Signal(range(_LOOKUP_CLOCKS))
        core_went = Signal()  # the core's message went to some CS (for core_delivered)
        installed_q = Signal()  # the install verdict taken
        # "Choosing the recipients": first_q is the first recipient (the
        # asker of a DUMP, or the active CS), first_copies the others
        no_recipient, to_split = Signal(name="no_recipient"), Signal(name="to_split")
        first_q, first_copies = Signal.like(slot, name="first_q"), Signal(n, name="first_copies")
        with OneHotFSM(m, "Idle", name="session") as fsm:
            m.d.comb += fsm_dispatching.eq(fsm.ongoing("Dispatching"))
            # The slot writes' flops, from the settled lookup (as `adopts`).
            # "Dispatching" lasts a clock, entered only from "Sliding the
            # window" as slide_more is 0, and "Answering HELLO" a clock,
            # only from "Dispatching" on go_hello: those are the states'
            # next values here (fsm.ahead() ran through the branch's flags
            # into the FSM's leave terms, 5 levels into deadline_we).
            claim_ahead = fsm.ongoing("Sliding the window") & ~slide_more & new_cs & any_free
            # What "Answering HELLO" does with the slot's epochs, decided into
            # flops every clock from the same registers, settled by
            # "Dispatching" (the branch's flags ran 5 levels into epoch_we).
            hello_reauth = Signal(name="hello_reauth")
            hello_epoch_to_hdr, hello_raise_newest = Signal(name="hello_epoch_to_hdr"), Signal(name="hello_raise_newest")
            hello_adopts = hello_taken & ~(slot_authed & hello_active & ~slot_active) & session_ok
            m.d.sync += [
                hello_reauth.eq(hello_taken & slot_authed & hello_active & ~slot_active),
                hello_epoch_to_hdr.eq(hello_adopts & slot_epoch_ahead),
                hello_raise_newest.eq(hello_adopts & hello_active & epoch_ahead),
            ]
            hello_ahead = fsm_dispatching & go_hello & hello_taken
            m.d.comb += claim_next.eq(Mux(claim_ahead, one_hot(free_slot), 0))
            m.d.sync += [
                claim.eq(claim_next),
                hello_we.eq(Mux(hello_ahead, one_hot(slot), 0)),
                deadline_we.eq(claim_next | Mux(hello_ahead, one_hot(slot), 0)),
            ]
            splitting = fsm.ongoing("Splitting the active set")
            split_ahead = fsm.ahead("Splitting the active set")
            # a copy of the state's flop for the key's 104 selects
            key_shifting = flop_copy(m, split_ahead, name="key_shifting")
            m.d.sync += [
                key_shift.eq(Mux(key_shifting, key_shift >> 1, key_feed)),
                split_step.eq(Mux(splitting, split_step + 1, 0)),
                # the phase of the next clock's split_step
                split_first.eq(split_ahead & ~splitting),
                feeding.eq(split_ahead & (~splitting | (split_step < _KEY_BITS - 1))),
                crc_load.eq(split_ahead & splitting & (split_step == _KEY_BITS)),
                dividing.eq(split_ahead & splitting & (split_step >= _KEY_BITS + 1) & (split_step < _KEY_BITS + 33)),
                split_end.eq(split_ahead & splitting & (split_step >= _KEY_BITS + 34)),
                crc_shift.eq(Mux(crc_load, key_crc.crc, crc_shift << 1)),
            ]
            with m.If(dividing):
                twice = Cat(crc_shift[-1], remainder)
                m.d.sync += remainder.eq(Mux(twice >= member_count, twice - member_count, twice))
            with m.Elif(feeding):
                m.d.sync += remainder.eq(0)
            with fsm.state("Idle"):
                # An authentication's first hash starts here: "Idle" is before
                # every "Dispatching" (written there, hash_index had the
                # state's branch chain in front of it, 8.3 ns routed).
                m.d.sync += [*to_hash_index(32 - len(AUTH_LABEL)), hash_for_session.eq(0)]
                with m.If(awaiting_verdict):
                    fsm.goto("Waiting for the install verdict")  # the message on rx is handled
                with m.Elif(self.rx.valid & ~to_core_pending & ~release_rx):
                    m.d.sync += lookup_wait.eq(0)
                    fsm.goto("Looking up the sender")
                with m.Elif(self.from_core.valid):
                    fsm.goto("Choosing the recipients")
                with m.Else():
                    # A CS silent for 3 of its HELLO intervals is forgotten;
                    # one slot looked at per idle clock.
                    m.d.sync += expiry_slot.eq(Mux(expiry_slot == n - 1, 0, expiry_slot + 1))
                    with m.If(in_use[expiry_slot] & slot_expired.bit_select(expiry_slot, 1)):
                        m.d.sync += [in_use[expiry_slot].eq(0), authed[expiry_slot].eq(0),
                                     taking_over[expiry_slot].eq(0)]
                        count("expired")

            with fsm.state("Looking up the sender"):
                # The lookup pipeline above settles on the message and table.
                # The slide's registers load every clock of the wait (only
                # "Sliding the window" reads them), the last load being the
                # settled one: the wait's compare is in front of slide_more
                # alone (it was in front of slide_left's subtract too, 5 levels).
                m.d.sync += [
                    lookup_wait.eq(lookup_wait + 1),
                    clear_ptr.eq(Mux(far_ahead, 0, slot_highest[:6] + 1)),
                    clear_words.eq(far_ahead),
                    slide_left.eq(Mux(seq_ahead, Mux(far_ahead, 16, shift - 1), 0)),
                ]
                with m.If(lookup_wait == _LOOKUP_CLOCKS - 1):
                    m.d.sync += slide_more.eq(seq_ahead & (far_ahead | (shift != 1)))
                    fsm.goto("Sliding the window")

            with fsm.state("Sliding the window"):
                # The skipped seqs' bits cleared, one (or a word) a clock.
                with m.If(slide_more):
                    m.d.sync += [clear_ptr.eq(clear_ptr + Mux(clear_words, 4, 1)), slide_left.eq(slide_left - 1),
                                 slide_more.eq(slide_left != 1)]
                with m.Else():
                    fsm.goto("Dispatching")

            with fsm.state("Dispatching"):
                # The branch taken is a flop (go_*, above): each flag alone
                # in front of its state's flop, ack_error and the counters.
                with m.If(go_relookup):
                    # the slot is written under claim (above)
                    m.d.sync += lookup_wait.eq(0)
                    fsm.goto("Looking up the sender")  # again, now with the slot found
                with m.If(go_done):
                    fsm.goto("Done")
                with m.If(go_ack):
                    fsm.goto("Acknowledging")
                with m.If(go_hello):
                    fsm.goto("Answering HELLO")
                with m.If(go_hash):
                    fsm.goto("Hashing")  # hash_index and hash_for_session were set in "Idle"
                with m.If(go_core):
                    fsm.goto("Passing to the core")
                with m.If(go_execute):
                    fsm.goto("Executing a request")
                with m.If(go_accept):  # the message's window bit (and highest) taken
                    m.d.comb += accept.eq(1)
                for name, flag in went.items():
                    with m.If(flag):
                        count(name)
                with m.If(go_notauth):
                    to_ack_error(ErrorCode.NOTAUTH)
                with m.If(go_stale):
                    to_ack_error(ErrorCode.STALE_EPOCH)

            with fsm.state("Answering HELLO"):
                count("hellos")
                start_reply(_Kind.HELLO)
                # A HELLO taken (hello_taken): the CS's fields and deadline
                # are written under hello_we (above), the rest under the
                # hello_* flags.  The slot's role, session and epoch, and the
                # DFS's newest epoch, are as the lookup pipeline saw them in
                # "Dispatching" (which changed none of them for a HELLO), so
                # its registered compares stand for the 32-bit ones.
                with m.If(hello_reauth):
                    # Becoming active takes a fresh authentication.
                    m.d.sync += [authed[slot].eq(0), taking_over[slot].eq(1)]
                    count("reauth_for_active")
                m.d.comb += [epoch_to_hdr.eq(hello_epoch_to_hdr), raise_newest.eq(hello_raise_newest)]
                fsm.goto("Sending")

            with fsm.state("Hashing"):
                # Label, then challenge and nonce, both big-endian.
                # out_slot was loaded as "Dispatching" started: nonce_q is
                # the slot's nonce long before its bytes (40 to 47) are read.
                m.d.comb += siphash.sink.valid.eq(hash_byte_ok)
                with m.If(siphash.sink.ready & hash_byte_ok):
                    # hash_byte_ok drops for two clocks
                    m.d.sync += [hash_index.eq(hash_index + 1), hash_at.eq(hash_at.rotate_left(1))]
                    with m.If(hash_byte_last):
                        fsm.goto("Waiting for the hash")
                with m.Else():
                    # hash_byte is hash_index's two clocks after it moved
                    m.d.sync += [hash_settling.eq(1), hash_byte_ok.eq(hash_settling)]

            with fsm.state("Waiting for the hash"):
                # The hash taken into registers, acted on from "Taking the
                # hash" (one clock more a hash, two an authentication): the
                # hash's valid ran on into the session's enables (fanout 32
                # a slot), kind, out_slot and hash_index, 8.2-8.3 ns routed.
                m.d.comb += siphash.source.ready.eq(1)
                with m.If(siphash.source.valid):
                    with m.If(~hash_for_session):
                        m.d.sync += auth_response.eq(siphash.source.payload)
                    with m.Else():
                        hashed = siphash.source.payload[:32]
                        m.d.sync += [
                            new_session_q.eq(hashed),
                            new_session_zero.eq(hashed == 0),
                            session_we.eq(one_hot(slot)),  # written in "Taking the hash"
                        ]
                    fsm.goto("Taking the hash")

            with fsm.state("Taking the hash"):
                # The answer's kind loads after either hash, under the
                # state's flop alone (behind hash_for_session it was 5
                # levels into kind): nothing reads kind until "Sending".
                start_reply(_Kind.AUTH_RESPONSE)
                with m.If(~hash_for_session):
                    m.d.sync += [hash_for_session.eq(1), *to_hash_index(32 - len(SESSION_LABEL))]
                    fsm.goto("Hashing")
                with m.Else():
                    count("authentications")
                    m.d.sync += [authed[slot].eq(1), taking_over[slot].eq(0)]
                    # the lookup pipeline's registered compares
                    m.d.comb += [epoch_to_hdr.eq(1), raise_newest.eq(raise_epoch)]
                    fsm.goto("Sending")

            with fsm.state("Executing a request"):
                to_vs_index(0)
                # NONE, or BADCONFIG for a CONFIG whose item is unknown (below)
                with m.If(request_is_vs | request_is_list | config_known):
                    to_ack_error(ErrorCode.NONE)
                value = body(Config).value
                with m.If(request_is_vs):
                    m.d.sync += [found_vs.eq(0), free_vs.eq(self._vs_entries), free_none.eq(1)]
                    fsm.goto("Finding the virtual server")
                with m.Elif(request_is_list):
                    m.d.sync += vs_list_count.eq(0)
                    fsm.goto("Listing virtual servers")
                with m.Else():
                    # CONFIG (its item known) or BADCONFIG.  CS_ADDR,
                    # DEFAULT_GATEWAY, SSMB_STANDBY_ADDR and HELLO_INTERVAL_MS
                    # are accepted and not used by this DFS yet.
                    with m.If(config_dfs_addr):
                        m.d.sync += [dfs_ip_reg.eq(value[:32]), dfs_ip_set.eq(1)]
                    with m.If(config_dfs_mac):
                        m.d.sync += [dfs_mac_reg.eq(value[:48]), dfs_mac_set.eq(1)]
                    with m.If(config_idle):
                        m.d.sync += self.idle_timeout_s.eq(value[:16])
                    with m.If(~config_known):
                        to_ack_error(ErrorCode.BADCONFIG)
                    fsm.goto("Acknowledging")

            # ADD_VS/DEL_VS: walk the table a entry per clock for the vs_id
            # (first match) and the first free entry, instead of comparing
            # every entry's id at once.
            add = body(AddVs)
            delete = body(DelVs)
            wanted_id = Mux(is_add, add.vs.vs_id, delete.vs.vs_id)
            # The entry's id is registered as read, then its compare (the
            # LUT RAM read and the 16-bit compare ran on into the state's
            # decode, 7 levels; into id_match alone, 5): three clocks an
            # entry, id_match valid on the third (``settled`` holds compared
            # back a clock).
            # So are the entry's valid bit and the end of the table (the
            # 16-way bit select and the compare ran on into vs_index, 7
            # levels): the end is seen on the second clock.
            # The id wanted is a register too, loaded every clock ("Executing
            # a request" comes first, and the message holds): its mux from
            # the message ran on into the compare, 4 levels (id_match 7.42 ns
            # on the 25F, syn_a seed 5); the compare is LUT4s on ECP5.
            id_match, compared, settled = Signal(name="id_match"), Signal(), Signal()
            entry_valid, at_end = Signal(name="entry_valid"), Signal()
            vs_id_q = Signal.like(vs_id_rd.data, name="vs_id_q")
            wanted_id_q = Signal.like(vs_id_rd.data, name="wanted_id_q")
            m.d.sync += [vs_id_q.eq(vs_id_rd.data), wanted_id_q.eq(wanted_id),
                         id_match.eq(lut_eq(m, "id_match_eq", vs_id_q, wanted_id_q, instance=ecp5)),
                         compared.eq(0), settled.eq(0),
                         entry_valid.eq(vs_valid.bit_select(vs_index, 1)), at_end.eq(vs_index == self._vs_entries)]
            with fsm.state("Finding the virtual server"):
                with m.If(~compared):
                    m.d.sync += [settled.eq(1), compared.eq(settled)]
                with m.Elif(at_end):
                    fsm.goto("Deciding")
                with m.Elif(entry_valid & id_match):
                    m.d.sync += found_vs.eq(1)
                    fsm.goto("Deciding")
                with m.Else():
                    with m.If(~entry_valid & free_none):
                        m.d.sync += [free_vs.eq(vs_index), free_none.eq(0)]
                    to_vs_index((vs_index + 1)[:len(vs_index)])

            with fsm.state("Deciding"):
                with m.If(is_add):
                    with m.If(~add_supported | (~found_vs & free_none)):
                        to_ack_error(ErrorCode.BADCONFIG)
                        fsm.goto("Acknowledging")
                    with m.Else():
                        with m.If(~found_vs):
                            to_vs_index(free_vs)
                        fsm.goto("Writing a virtual server")
                with m.Elif(found_vs):
                    fsm.goto("Writing a virtual server")
                with m.Else():
                    fsm.goto("Acknowledging")  # idempotent: already gone

            # The CAM write and the table's write data and addresses are
            # driven in every state, only the enables in the state below (set
            # only there, each of their ~230 bits would be ANDed with the
            # state: a LUT4 a bit).
            written = self.vs_write.payload
            m.d.comb += [
                written.index.eq(vs_index),
                written.valid.eq(is_add),
                written.flags.eq(Mux(is_add, hdr.flags, 0)),
                written.vs.eq(Mux(is_add, add.vs.as_value(), delete.vs.as_value())),
                vs_id_wr.addr.eq(vs_index),
                vs_id_wr.data.eq(written.vs.vs_id),
                vs_wr.addr.eq(vs_index),
                vs_wr.data.flags.eq(written.flags),
                *(getattr(vs_wr.data, name).eq(getattr(written.vs, name)[:len(getattr(vs_wr.data, name))])
                  for name, _ in block_layout(VirtualServer)),
            ]
            with fsm.state("Writing a virtual server"):
                m.d.comb += self.vs_write.valid.eq(1)
                with m.If(self.vs_write.ready):
                    m.d.comb += [vs_id_wr.en.eq(1), vs_wr.en.eq(1)]
                    m.d.sync += vs_valid.bit_select(vs_index, 1).eq(is_add)
                    fsm.goto("Acknowledging")

            with fsm.state("Listing virtual servers"):
                # Two clocks an entry (no id to compare: ``settled`` is not waited for).
                with m.If(~compared):
                    m.d.sync += compared.eq(1)
                with m.Elif(at_end):
                    fsm.goto("Acknowledging")
                with m.Elif(~entry_valid):
                    to_vs_index((vs_index + 1)[:len(vs_index)])
                with m.Else():
                    fsm.goto("Reading a list entry")

            with fsm.state("Reading a list entry"):
                # The block RAM's read is two clocks; vs_index holds.
                fsm.goto("Reading a list entry, second clock")

            with fsm.state("Reading a list entry, second clock"):
                start_reply(_Kind.VS_LIST)
                fsm.goto("Sending a list entry")

            with fsm.state("Sending a list entry"):
                m.d.comb += self.tx.valid.eq(1)
                with m.If(self.tx.ready):
                    m.d.sync += sent
                    to_vs_index((vs_index + 1)[:len(vs_index)])
                    m.d.sync += vs_list_count.eq(vs_list_count + 1)
                    fsm.goto("Listing virtual servers")

            with fsm.state("Acknowledging"):
                start_reply(_Kind.ACK)
                fsm.goto("Sending")

            with fsm.state("Sending"):
                m.d.comb += self.tx.valid.eq(1)
                with m.If(self.tx.ready):
                    m.d.sync += sent
                    with m.If(more_copies_q):
                        to_out_slot(next_copy)
                        to_copies(copies & ~(Const(1, n) << next_copy)[:n])
                        count("replicated")
                    with m.Elif(sending_replica):
                        count("replicated")
                        m.d.comb += self.rx.ready.eq(1)
                        fsm.goto("Idle")
                    with m.Elif(core_q):
                        m.d.sync += core_went.eq(1)
                        fsm.goto("Releasing the core message")
                    with m.Else():
                        m.d.comb += self.rx.ready.eq(1)
                        fsm.goto("Idle")

            with fsm.state("Passing to the core"):
                # Offered on to_core from now on (below), while the engine
                # goes on serving the core's own messages: the core may be
                # waiting to send one before it takes this.
                m.d.sync += to_core_pending.eq(1)
                fsm.goto("Idle")

            with fsm.state("Waiting for the install verdict"):
                if self._install_verdicts:
                    m.d.comb += self.installed.ready.eq(1)
                    with m.If(self.installed.valid):
                        # Acted on from a flop (one clock more a verdict):
                        # the flow controller's verdict ran on into kind,
                        # out_slot and copies' loads, 6 levels across blocks.
                        m.d.sync += [awaiting_verdict.eq(0), installed_q.eq(self.installed.payload)]
                        fsm.goto("Taking the install verdict")
                    with m.Elif(self.from_core.valid):
                        fsm.goto("Choosing the recipients")  # the core may speak first
                else:
                    fsm.goto("Done")

            with fsm.state("Taking the install verdict"):
                with m.If(installed_q & (others != 0)):
                    # Replication: a copy for every other authenticated CS.
                    to_kind(_Kind.REPLICA)
                    to_out_slot(lowest_other)
                    to_copies(others)
                    to_out_anonymous(0)
                    fsm.goto("Replicating")
                with m.Else():
                    fsm.goto("Done")

            with fsm.state("Replicating"):
                to_copies(copies & ~(Const(1, n) << out_slot)[:n])
                fsm.goto("Sending")

            # out_slot and out_anonymous take the sender's slot as
            # "Dispatching" starts, under a flop set a clock ahead (it is
            # entered from "Sliding the window" alone, as slide_more is 0):
            # every answer to the held message (HELLO, AUTH_RESPONSE, ACK,
            # VS_LIST) and the hash's nonce_q follow "Dispatching" without
            # another load of either, and slot and found hold until the
            # message is done.  The answering states' flags ORed into the
            # loads ran 5-6 levels deep (core_sent_to, out_slot's flop,
            # 7.7 ns routed in the 9b18dc6 build).
            out_slot_from_slot = Signal(name="out_slot_from_slot")
            m.d.sync += out_slot_from_slot.eq(fsm.ongoing("Sliding the window") & ~slide_more)
            with m.If(out_slot_from_slot):
                to_out_slot(slot)
                to_out_anonymous(~found)

            with fsm.state("Done"):
                m.d.comb += self.rx.ready.eq(1)
                fsm.goto("Idle")

            with fsm.state("Choosing the recipients"):
                # Who gets the core's message, decided into flops a clock
                # before "Stamping a core message" acts on them (one clock
                # more a core message): the active set's pick, the copies'
                # mask and the branch conditions ran on into copies, kind and
                # out_slot's loads, 7 levels.  Nothing here changes authed
                # or the active set.
                # DELETE and RESET go to every authenticated CS (the active
                # one first), re-stamped for each: replication.
                # A DUMP's answers go to the asker alone (the copies' mask 0,
                # no split): its slot is first_q, so that "Stamping" loads
                # out_slot from one register (two loads there, and the split's
                # owner, ran 5 levels deep into out_slot).
                authed_mask = Cat(*authed)
                first = Mux(active_found, active, lowest_authed)
                to_asker = core_dump_answer & dump_asked & authed[dump_slot]
                m.d.sync += [
                    no_recipient.eq(~to_asker & ~active_found & ~(core_to_all & (authed_mask != 0))),
                    first_q.eq(Mux(to_asker, dump_slot, first)),
                    first_copies.eq(Mux(~to_asker & core_to_all, authed_mask & ~(Const(1, n) << first)[:n], 0)),
                    to_split.eq(~to_asker & core_is_query & (member_count > 1)),
                ]
                fsm.goto("Stamping a core message")

            with fsm.state("Stamping a core message"):
                with m.If(core_is_dump):
                    m.d.sync += dump_asked.eq(0)
                with m.If(no_recipient):
                    count("no_active_cs")
                    m.d.sync += core_went.eq(0)
                    fsm.goto("Releasing the core message")
                with m.Else():
                    to_kind(_Kind.CORE)
                    to_out_slot(first_q)
                    to_out_anonymous(0)
                    to_copies(first_copies)
                    count("from_core_count")
                    with m.If(to_split):
                        fsm.goto("Splitting the active set")
                    with m.Else():
                        fsm.goto("Sending")

            with fsm.state("Releasing the core message"):
                # The core's message is taken from this state's flop (one
                # clock more a message): the flow controller's state and its
                # QUERY bookkeeping act on ``from_core.ready``, and the
                # decode of tx.ready, kind and copies behind it ran on into
                # them (ed45393's worst routed path: the session's ``authed``
                # -> the flow controller's "After eviction", 10.0 ns).
                m.d.comb += [self.from_core.ready.eq(1), self.core_delivered.eq(core_went)]
                fsm.goto("Idle")

            with fsm.state("Splitting the active set"):
                # Active/active: the QUERY goes to member crc32(key) % count
                # of the active set ordered by cs_id.  The CRC takes the key a
                # bit per clock (zlib's order: bytes big-endian, bits LSB
                # first: steps 0 to _KEY_BITS - 1, feeding), then the
                # remainder a bit per clock, MSB first (crc_load at
                # _KEY_BITS + 1, once the last bit is in, then dividing);
                # the owner register follows the last remainder step.
                with m.If(split_end):
                    fsm.goto("Sending")
            # split_end is only up in that state (set with split_ahead): the
            # load's flag is the flop alone.
            with m.If(split_end):
                to_out_slot(owner)

        # The message passed to the core: held on to_core (and rx) until taken.
        m.d.comb += [self.to_core.valid.eq(to_core_pending), self.to_core.payload.eq(cur)]
        with m.If(to_core_pending & self.to_core.ready):
            m.d.sync += to_core_pending.eq(0)
            with m.If(to_core_dump):
                # Its STATS and DUMP END go back to whoever asked.
                m.d.sync += [dump_slot.eq(slot), dump_asked.eq(1)]
            count("to_core_count")
            with m.If(to_core_replicates & self._install_verdicts):
                # Keep it on rx until the core says whether it installed it.
                m.d.sync += awaiting_verdict.eq(1)
            with m.Else():
                m.d.sync += release_rx.eq(1)
        for loads in (to_kind_only, to_kind_core, to_kind_replica, to_out_slot, to_out_anonymous, to_copies,
                      to_vs_index, to_ack_error):
            loads.close()
        return m

    @staticmethod
    def _is_request(msg_type):
        return (
            (msg_type == CsmbType.ADD_VS)
            | (msg_type == CsmbType.DEL_VS)
            | (msg_type == CsmbType.VS_LIST)
            | (msg_type == CsmbType.CONFIG)
        )
