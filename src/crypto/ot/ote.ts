// OT extension: KOS15 (ePrint 2015/546, corrected version, Fig. 10), which is SoftSpokenOT
// (ePrint 2022/192) with k = 1, including its consistency check. As DKLs23 §5 suggests, the check's
// challenge comes from Fiat–Shamir over the receiver's matrix (no extra round). One extension yields
// XI random OTs on KAPPA-bit strings; the multiplication (mul.ts) hashes them into scalar pads.
//
// Conventions: bit i of a byte string is (b[i >> 3] >> (i & 7)) & 1. The receiver's matrix is
// stored column-wise: KAPPA columns of M bits. GF(2^128) uses x^128 + x^7 + x^2 + x + 1.
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { endianness } from 'node:os';
import { KAPPA, KAPPA_BYTES, SEED_BYTES, VerifyError } from './base-ot.ts';
import { ctEqual, Reader, taggedHash, Writer } from './encoding.ts';

/** OTs per extension: DKLs19 ξ = κ_q + 2s with κ_q = 256 (log q) and s = 80 statistical. */
export const XI = 416;
/** Extended length M: XI plus a random pad of ≥ 128 + 80 bits that masks the check values. */
export const M = 640;
const M_BYTES = M / 8;
const CHUNKS = M / 128;

export const OTE_MESSAGE_BYTES = KAPPA * M_BYTES + 16 + KAPPA * 16;

if (endianness() !== 'LE') throw new Error('ote: little-endian host required');
const PRG_BLOCKS = M_BYTES / 16;

/**
 * Column expansion for all KAPPA columns at once: for column i with 32-byte seed σ_i, the 128-bit
 * s_i = σ_i[0..16] ⊕ σ_i[16..32] and blocks b < M/128 of
 *   PRG(s_i) = π(s_i ⊕ T_{i,b}) ⊕ s_i ⊕ T_{i,b},   π = AES-128 under K = H_sha256(tag, ctx)[0..16]
 * (MMO in the ideal-cipher model: pseudorandom unless π is queried at s_i ⊕ T, i.e. s_i is
 * guessed; T_{i,b} = block with last four bytes the little-endian u32 i·2^8 + b). K is per session
 * and pair, so the same base OTs never give the same expansion twice. One AES-ECB pass.
 */
function prgAll(ctx: Uint8Array, seeds: Uint8Array): Uint8Array {
  const sb = seeds.byteOffset & 3 ? new Uint8Array(seeds) : seeds;
  const s = new Uint32Array(sb.buffer, sb.byteOffset, (KAPPA * SEED_BYTES) >> 2);
  const x = new Uint32Array(KAPPA * PRG_BLOCKS * 4);
  for (let i = 0; i < KAPPA; i++) {
    const o = i * 8;
    const s0 = s[o]! ^ s[o + 4]!;
    const s1 = s[o + 1]! ^ s[o + 5]!;
    const s2 = s[o + 2]! ^ s[o + 6]!;
    const s3 = s[o + 3]! ^ s[o + 7]!;
    for (let b = 0; b < PRG_BLOCKS; b++) {
      const q = (i * PRG_BLOCKS + b) * 4;
      x[q] = s0;
      x[q + 1] = s1;
      x[q + 2] = s2;
      x[q + 3] = s3 ^ ((i << 8) | b);
    }
  }
  if (sb !== seeds) sb.fill(0);
  const c = createCipheriv('aes-128-ecb', taggedHash('ote/prg-key', ctx).subarray(0, 16), null);
  c.setAutoPadding(false);
  const eb = c.update(new Uint8Array(x.buffer));
  c.final();
  const out = new Uint8Array(eb.length);
  const e = new Uint32Array(out.buffer);
  const ev =
    eb.byteOffset & 3
      ? new Uint32Array(new Uint8Array(eb).buffer)
      : new Uint32Array(eb.buffer, eb.byteOffset, eb.length >> 2);
  for (let k = 0; k < e.length; k++) e[k] = ev[k]! ^ x[k]!;
  x.fill(0);
  ev.fill(0);
  eb.fill(0);
  return out;
}

// ---- GF(2^128) on four little-endian uint32 words ------------------------------------------------

function gfMulAcc(acc: Uint32Array, a: Uint32Array, ao: number, b: Uint32Array, bo: number): void {
  let v0 = a[ao]!;
  let v1 = a[ao + 1]!;
  let v2 = a[ao + 2]!;
  let v3 = a[ao + 3]!;
  let r0 = 0;
  let r1 = 0;
  let r2 = 0;
  let r3 = 0;
  for (let w = 0; w < 4; w++) {
    let bw = b[bo + w]!;
    for (let k = 0; k < 32; k++) {
      if (bw & 1) {
        r0 ^= v0;
        r1 ^= v1;
        r2 ^= v2;
        r3 ^= v3;
      }
      bw >>>= 1;
      const carry = v3 >>> 31;
      v3 = (v3 << 1) | (v2 >>> 31);
      v2 = (v2 << 1) | (v1 >>> 31);
      v1 = (v1 << 1) | (v0 >>> 31);
      v0 = (v0 << 1) ^ (carry * 0x87);
    }
  }
  acc[0] = acc[0]! ^ r0;
  acc[1] = acc[1]! ^ r1;
  acc[2] = acc[2]! ^ r2;
  acc[3] = acc[3]! ^ r3;
}

const words = (b: Uint8Array): Uint32Array => {
  const c = new Uint8Array(b); // copy: aligned, and ours
  return new Uint32Array(c.buffer, 0, c.length >> 2);
};

/**
 * Multiplication tables for the fixed challenge χ: for chunk c, nibble position p (bits 4p..4p+3 of
 * the other factor) and nibble value v, χ_c · (v · x^(4p)) — 32 lookups per product instead of
 * 128 shift-and-add steps. Same products as gfMulAcc (which remains the reference).
 */
function chiTables(chi: Uint32Array): Uint32Array {
  const T = new Uint32Array(CHUNKS * 32 * 16 * 4);
  const base = new Uint32Array(128 * 4);
  for (let c = 0; c < CHUNKS; c++) {
    // base_i = χ_c · x^i: multiply by x (shift left, reduce by x^128 = x^7 + x^2 + x + 1) each step
    let v0 = chi[4 * c]!;
    let v1 = chi[4 * c + 1]!;
    let v2 = chi[4 * c + 2]!;
    let v3 = chi[4 * c + 3]!;
    for (let i = 0; i < 128; i++) {
      base[4 * i] = v0;
      base[4 * i + 1] = v1;
      base[4 * i + 2] = v2;
      base[4 * i + 3] = v3;
      const carry = v3 >>> 31;
      v3 = (v3 << 1) | (v2 >>> 31);
      v2 = (v2 << 1) | (v1 >>> 31);
      v1 = (v1 << 1) | (v0 >>> 31);
      v0 = (v0 << 1) ^ (carry * 0x87);
    }
    for (let p = 0; p < 32; p++) {
      const o = (c * 32 + p) * 16 * 4;
      for (let v = 1; v < 16; v++) {
        const low = v & -v; // lowest set bit
        const bit = 31 - Math.clz32(low);
        const prev = o + (v ^ low) * 4;
        const b = (4 * p + bit) * 4;
        for (let k = 0; k < 4; k++) T[o + v * 4 + k] = T[prev + k]! ^ base[b + k]!;
      }
    }
  }
  return T;
}

/** Universal hash of one M-bit column: Σ_c χ_c · y_c over GF(2^128), with χ's tables. */
function hashColumn(T: Uint32Array, col: Uint32Array, off: number): Uint32Array {
  let r0 = 0;
  let r1 = 0;
  let r2 = 0;
  let r3 = 0;
  for (let c = 0; c < CHUNKS; c++) {
    for (let w = 0; w < 4; w++) {
      let a = col[off + 4 * c + w]!;
      for (let n = 0; n < 8; n++) {
        const o = ((c * 32 + w * 8 + n) * 16 + (a & 15)) * 4;
        r0 ^= T[o]!;
        r1 ^= T[o + 1]!;
        r2 ^= T[o + 2]!;
        r3 ^= T[o + 3]!;
        a >>>= 4;
      }
    }
  }
  return Uint32Array.of(r0, r1, r2, r3);
}

function challenge(ctx: Uint8Array, u: Uint8Array): Uint32Array {
  const seed = taggedHash('ote/chi', ctx, u);
  const out = createHash('shake256', { outputLength: CHUNKS * 16 })
    .update(seed)
    .digest();
  return words(out);
}

/** First XI rows (KAPPA bits each) of a column-major KAPPA × M bit matrix. */
function transposeRows(cols: Uint8Array): Uint8Array {
  const rows = new Uint8Array(XI * KAPPA_BYTES);
  for (let i = 0; i < KAPPA; i++) {
    const byte = i >> 3;
    const mask = 1 << (i & 7);
    const base = i * M_BYTES;
    for (let jb = 0; jb < XI / 8; jb++) {
      let v = cols[base + jb]!;
      let j = jb * 8;
      while (v) {
        if (v & 1) rows[j * KAPPA_BYTES + byte]! |= mask;
        v >>= 1;
        j++;
      }
    }
  }
  return rows;
}

/** Receiver side of one extension (DKLs23's Bob). `choices` are XI bits. */
export function oteReceiverExtend(
  ctx: Uint8Array,
  seeds0: Uint8Array,
  seeds1: Uint8Array,
  choices: Uint8Array,
): { message: Uint8Array; rows: Uint8Array } {
  if (choices.length !== XI / 8) throw new Error('ote: choices length');
  const x = new Uint8Array(M_BYTES);
  x.set(choices, 0);
  x.set(randomBytes(M_BYTES - XI / 8), XI / 8);
  const t0 = new Uint8Array(KAPPA * M_BYTES);
  const u = new Uint8Array(KAPPA * M_BYTES);
  const a = prgAll(ctx, seeds0);
  const b = prgAll(ctx, seeds1);
  t0.set(a, 0);
  {
    const a32 = new Uint32Array(a.buffer, a.byteOffset, a.length >> 2);
    const b32 = new Uint32Array(b.buffer, b.byteOffset, b.length >> 2);
    const u32 = new Uint32Array(u.buffer, u.byteOffset, u.length >> 2);
    const x32 = new Uint32Array(x.buffer, x.byteOffset, M_BYTES >> 2);
    const MW = M_BYTES >> 2;
    for (let i = 0; i < KAPPA; i++) {
      const o = i * MW;
      for (let k = 0; k < MW; k++) u32[o + k] = a32[o + k]! ^ b32[o + k]! ^ x32[k]!;
    }
  }
  a.fill(0);
  b.fill(0);
  // KOS15 Fig. 10 "Check correlation": x̃ = h(x), t̃_i = h(t_i), with h keyed by FS(u).
  const chi = chiTables(challenge(ctx, u));
  const w = new Writer().bytes(u);
  const xw = words(x);
  w.bytes(new Uint8Array(hashColumn(chi, xw, 0).buffer));
  const tw = words(t0);
  for (let i = 0; i < KAPPA; i++) w.bytes(new Uint8Array(hashColumn(chi, tw, i * (M_BYTES / 4)).buffer));
  const rows = transposeRows(t0);
  t0.fill(0);
  tw.fill(0);
  x.fill(0);
  xw.fill(0);
  return { message: w.finish(), rows };
}

/**
 * Sender side (DKLs23's Alice): check the receiver's correlation and return the XI rows q_j, where
 * q_j = t_j ⊕ x_j·Δ. Throws VerifyError naming nothing (the caller knows who sent it).
 */
export function oteSenderReceive(
  ctx: Uint8Array,
  delta: Uint8Array,
  seeds: Uint8Array,
  message: Uint8Array,
): Uint8Array {
  const r = new Reader(message, 'ote');
  const u = r.bytes(KAPPA * M_BYTES, 'u');
  const xt = words(r.bytes(16, 'x~'));
  const tt = words(r.bytes(KAPPA * 16, 't~'));
  r.end();
  const q = prgAll(ctx, seeds);
  {
    const q32 = new Uint32Array(q.buffer, q.byteOffset, q.length >> 2);
    const u32 = words(u);
    const MW = M_BYTES >> 2;
    for (let i = 0; i < KAPPA; i++) {
      const o = i * MW;
      if ((delta[i >> 3]! >> (i & 7)) & 1)
        for (let k = 0; k < MW; k++) q32[o + k] = q32[o + k]! ^ u32[o + k]!;
    }
  }
  const chi = chiTables(challenge(ctx, u));
  const qw = words(q);
  let bad = 0;
  for (let i = 0; i < KAPPA; i++) {
    const hq = hashColumn(chi, qw, i * (M_BYTES / 4));
    const d = (delta[i >> 3]! >> (i & 7)) & 1;
    for (let k = 0; k < 4; k++) bad |= hq[k]! ^ tt[4 * i + k]! ^ (d ? xt[k]! : 0);
  }
  qw.fill(0);
  if (bad !== 0) {
    q.fill(0);
    throw new VerifyError('ote: KOS consistency check failed');
  }
  const rows = transposeRows(q);
  q.fill(0);
  return rows;
}

export { ctEqual, KAPPA, KAPPA_BYTES };

/** Internals for tests only (the table-driven GF(2^128) hash against the bit-serial reference). */
export const _internal = { gfMulAcc, chiTables, hashColumn };
