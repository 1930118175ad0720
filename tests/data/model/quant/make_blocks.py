#!/usr/bin/env python3
"""Quantised ggml blocks with their values, for tests/model/quant_test.cpp.

Writes <TYPE>.bin (blocks as they lie in a GGUF file) and <TYPE>.npy (the float32 values they
hold) for Q8_0, Q4_0, Q4_K, Q5_K and Q6_K. The values are computed here with numpy from the block
layouts as ggml-common.h describes them (struct fields, sizes and the order of the values), not
from tokmap's C++. The first block of each type is built by hand with values written out below;
the others are random bytes (with finite f16 scales). Deterministic (seeded).

    /usr/bin/python3 tests/data/model/quant/make_blocks.py
"""
import pathlib

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
rng = np.random.default_rng(12)
RANDOM_BLOCKS = 4


def f16_bytes(x):
    return np.array([x], dtype="<f2").tobytes()


def f16(b):
    return float(np.frombuffer(b, dtype="<f2")[0])


def random_f16():
    return f16_bytes(rng.uniform(-2.0, 2.0))


# --- Q8_0: { f16 d; int8 qs[32]; }  x[i] = d * qs[i]
def q8_0_values(block):
    d = f16(block[0:2])
    qs = np.frombuffer(block[2:34], dtype=np.int8).astype(np.float64)
    return d * qs


def q8_0_blocks():
    hand = f16_bytes(0.5) + np.arange(-16, 16, dtype=np.int8).tobytes()
    hand_values = [0.5 * q for q in range(-16, 16)]  # -8.0, -7.5, ..., 7.5
    blocks = [hand] + [random_f16() + rng.integers(0, 256, 32, dtype=np.uint8).tobytes()
                       for _ in range(RANDOM_BLOCKS)]
    return blocks, hand_values


# --- Q4_0: { f16 d; u8 qs[16]; }  value j (< 16) is the low nibble of qs[j], value j + 16 the
# high nibble; x = d * (nibble - 8)
def q4_0_values(block):
    d = f16(block[0:2])
    qs = np.frombuffer(block[2:18], dtype=np.uint8).astype(np.int64)
    nibbles = np.concatenate([qs & 0xF, qs >> 4])
    return d * (nibbles - 8)


def q4_0_blocks():
    # d = 0.25; nibbles: low = j, high = 15 - j  → values 0.25 * (j - 8) then 0.25 * (7 - j)
    qs = bytes((j | ((15 - j) << 4)) for j in range(16))
    hand = f16_bytes(0.25) + qs
    hand_values = [0.25 * (j - 8) for j in range(16)] + [0.25 * (7 - j) for j in range(16)]
    blocks = [hand] + [random_f16() + rng.integers(0, 256, 16, dtype=np.uint8).tobytes()
                       for _ in range(RANDOM_BLOCKS)]
    return blocks, hand_values


# --- K-quant 6-bit scales and mins (Q4_K, Q5_K): 12 bytes hold 8 scales and 8 mins.
# Sub-blocks 0..3: scale = low 6 bits of byte j, min = low 6 bits of byte j + 4.
# Sub-blocks 4..7: low 4 bits of scale = low nibble of byte j + 4, high 2 bits = top 2 bits of
# byte j - 4; low 4 bits of min = high nibble of byte j + 4, high 2 bits = top 2 bits of byte j.
def unpack_scales(s):
    scales, mins = [], []
    for j in range(8):
        if j < 4:
            scales.append(s[j] & 63)
            mins.append(s[j + 4] & 63)
        else:
            scales.append((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4))
            mins.append((s[j + 4] >> 4) | ((s[j] >> 6) << 4))
    return scales, mins


def pack_scales(scales, mins):
    s = [0] * 12
    for j in range(4):
        s[j] = (scales[j] & 63) | ((scales[j + 4] >> 4) << 6)
        s[j + 4] = (mins[j] & 63) | ((mins[j + 4] >> 4) << 6)
        s[j + 8] = (scales[j + 4] & 0xF) | ((mins[j + 4] & 0xF) << 4)
    return bytes(s)


# --- Q4_K: { f16 d; f16 dmin; u8 scales[12]; u8 qs[128]; }  256 values in 8 sub-blocks of 32.
# qs is 4 chunks of 32 bytes; chunk c holds sub-block 2c in its low nibbles and 2c + 1 in its
# high nibbles. x = d * scale[sub] * q - dmin * min[sub]
def q4_k_quants(qs):
    q = []
    for c in range(4):
        chunk = np.frombuffer(qs[32 * c:32 * c + 32], dtype=np.uint8).astype(np.int64)
        q += [chunk & 0xF, chunk >> 4]
    return q  # 8 arrays of 32


def q4_k_values(block):
    d, dmin = f16(block[0:2]), f16(block[2:4])
    scales, mins = unpack_scales(block[4:16])
    q = q4_k_quants(block[16:144])
    return np.concatenate([d * scales[s] * q[s] - dmin * mins[s] for s in range(8)])


def q4_k_blocks():
    # d = 1, dmin = 0.5; sub-block s: scale s + 1 (plus 40 from sub-block 4 on, to use the high
    # bits), min 2 * s (+ 33 from 4 on); q = l % 16 in sub-block s at position l.
    scales = [s + 1 + (40 if s >= 4 else 0) for s in range(8)]
    mins = [2 * s + (33 if s >= 4 else 0) for s in range(8)]
    qs = bytearray(128)
    for c in range(4):
        for l in range(32):
            qs[32 * c + l] = (l % 16) | ((l % 16) << 4)
    hand = f16_bytes(1.0) + f16_bytes(0.5) + pack_scales(scales, mins) + bytes(qs)
    hand_values = [1.0 * scales[s] * (l % 16) - 0.5 * mins[s] for s in range(8) for l in range(32)]
    blocks = [hand] + [random_f16() + random_f16() +
                       rng.integers(0, 256, 140, dtype=np.uint8).tobytes()
                       for _ in range(RANDOM_BLOCKS)]
    return blocks, hand_values


# --- Q5_K: { f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]; }  as Q4_K, plus a fifth
# bit: value l of sub-block s has bit s of qh[l] as its bit 4.
def q5_k_values(block):
    d, dmin = f16(block[0:2]), f16(block[2:4])
    scales, mins = unpack_scales(block[4:16])
    qh = np.frombuffer(block[16:48], dtype=np.uint8).astype(np.int64)
    q = q4_k_quants(block[48:176])
    return np.concatenate([d * scales[s] * (q[s] + 16 * ((qh >> s) & 1)) - dmin * mins[s]
                           for s in range(8)])


def q5_k_blocks():
    # d = 0.5, dmin = 0.25; scales 1..8, mins 8..1; q = l (0..31) in every sub-block: low nibble
    # l % 16, fifth bit l // 16 (so qh[l] has all 8 bits set for l >= 16).
    scales = list(range(1, 9))
    mins = list(range(8, 0, -1))
    qh = bytes(0xFF if l >= 16 else 0 for l in range(32))
    qs = bytes(((l % 16) | ((l % 16) << 4)) for _ in range(4) for l in range(32))
    hand = f16_bytes(0.5) + f16_bytes(0.25) + pack_scales(scales, mins) + qh + qs
    hand_values = [0.5 * scales[s] * l - 0.25 * mins[s] for s in range(8) for l in range(32)]
    blocks = [hand] + [random_f16() + random_f16() +
                       rng.integers(0, 256, 172, dtype=np.uint8).tobytes()
                       for _ in range(RANDOM_BLOCKS)]
    return blocks, hand_values


# --- Q6_K: { u8 ql[128]; u8 qh[64]; int8 scales[16]; f16 d; }  256 values in two halves of 128;
# half n uses ql[64n:64n+64], qh[32n:32n+32], scales[8n:8n+8]. Value i of a half (0..127): low 4
# bits from ql[i % 64] (low nibble for i < 64, high nibble otherwise), high 2 bits are bits
# 2 * (i // 32) and up of qh[i % 32]; q = those 6 bits - 32; x = d * scales[i // 16] * q.
def q6_k_values(block):
    ql = np.frombuffer(block[0:128], dtype=np.uint8).astype(np.int64)
    qh = np.frombuffer(block[128:192], dtype=np.uint8).astype(np.int64)
    sc = np.frombuffer(block[192:208], dtype=np.int8).astype(np.int64)
    d = f16(block[208:210])
    out = []
    for n in range(2):
        i = np.arange(128)
        low = np.where(i < 64, ql[64 * n + i % 64] & 0xF, ql[64 * n + i % 64] >> 4)
        high = (qh[32 * n + i % 32] >> (2 * (i // 32))) & 3
        q = (low | (high << 4)) - 32
        out.append(d * sc[8 * n + i // 16] * q)
    return np.concatenate(out)


def q6_k_blocks():
    # d = 0.125; scales[k] = k - 8 (negative ones included); q at value i = (i % 64) - 32.
    ql = bytearray(128)
    qh = bytearray(64)
    for n in range(2):
        for i in range(128):
            q6 = i % 64
            j = 64 * n + i % 64
            ql[j] |= (q6 & 0xF) << (0 if i < 64 else 4)
            qh[32 * n + i % 32] |= (q6 >> 4) << (2 * (i // 32))
    sc = np.arange(-8, 8, dtype=np.int8).tobytes()
    hand = bytes(ql) + bytes(qh) + sc + f16_bytes(0.125)
    hand_values = [0.125 * (8 * n + i // 16 - 8) * ((i % 64) - 32)
                   for n in range(2) for i in range(128)]
    blocks = [hand] + [rng.integers(0, 256, 208, dtype=np.uint8).tobytes() + random_f16()
                       for _ in range(RANDOM_BLOCKS)]
    return blocks, hand_values


def main():
    for name, make, values, size in [("Q8_0", q8_0_blocks, q8_0_values, 34),
                                     ("Q4_0", q4_0_blocks, q4_0_values, 18),
                                     ("Q4_K", q4_k_blocks, q4_k_values, 144),
                                     ("Q5_K", q5_k_blocks, q5_k_values, 176),
                                     ("Q6_K", q6_k_blocks, q6_k_values, 210)]:
        blocks, hand_values = make()
        assert all(len(b) == size for b in blocks), name
        first = values(blocks[0])
        assert np.array_equal(first, np.array(hand_values)), name  # layout reading == hand values
        expected = np.concatenate([values(b) for b in blocks]).astype(np.float32)
        assert np.all(np.isfinite(expected)), name
        (HERE / f"{name}.bin").write_bytes(b"".join(blocks))
        np.save(HERE / f"{name}.npy", expected)
        print(name, len(blocks), "blocks,", expected.size, "values")


if __name__ == "__main__":
    main()
