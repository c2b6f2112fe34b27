// Two-party multiplication from OT: DKLs19 (ePrint 2019/523) Protocol 1, in the random-input form
// DKLs23 uses (Functionality 3.5 / §5.1, "RVOLE"): Bob's input b = <g, β> is random, encoded by XI
// random choice bits β against a public gadget vector g — the encoding that defeats selective-failure
// attacks (Alice learns at most a few bits of β, and b keeps ≥ 256 bits of min-entropy). Alice holds
// a vector a ∈ Z_q^L (L = 2: DKLs23 multiplies r_i and sk_i by the same b). Outputs: Alice c, Bob d,
// with c_k + d_k = a_k · b.
//
// Alice's consistency check (DKLs19 Protocol 1 steps 4-6, hashed as in DKLs23 §5.1): she also
// transfers random masks â, derives challenges θ, θ̂ by Fiat–Shamir, and sends u = θ⊙a + θ̂⊙â and
// H(r) with r_{j,k} = θ_k α_{j,k} + θ̂_k α̂_{j,k}; Bob recomputes r from his side and compares hashes.
import { createCipheriv } from 'node:crypto';
import { endianness } from 'node:os';
import { KAPPA_BYTES, VerifyError } from './base-ot.ts';
import {
  ctEqual,
  hashToScalar,
  mod,
  N,
  Reader,
  randomScalar,
  scalarToBytes,
  taggedHash,
  Writer,
} from './encoding.ts';
import { oteReceiverExtend, oteSenderReceive, XI } from './ote.ts';

export const L = 2;
const W = 2 * L; // payload scalars per OT: a (L) and â (L)
export const MUL_ALICE_BYTES = XI * W * 32 + L * 32 + 32;

/** Public gadget vector g (XI scalars) for one ordered pair; fixed at key setup. */
export function gadgetVector(pairCtx: Uint8Array): bigint[] {
  const g: bigint[] = [];
  for (let j = 0; j < XI; j++) g.push(hashToScalar('mul/gadget', pairCtx, j));
  return g;
}

// ---- Random-OT rows → scalar pads ------------------------------------------------------------------
//
// Each extended OT row (KAPPA = 128 bits) is hashed into W scalars with a tweakable circular
// correlation-robust hash built from AES (Guo–Katz–Wang–Yu, "Efficient and Secure
// Multiparty Computation from Fixed-Key Block Ciphers", S&P 2020 / ePrint 2019/074, §7 "TMMO"):
//   H(x, (j, b)) = π(π(x) ⊕ T_{j,b}) ⊕ π(x),   π = AES-128 under K = H_sha256(tag, ctx)[0..16],
// with the tweak T_{j,b} = (OT index j, output block b) and 2·W blocks per row (W·32 bytes). The key
// is derived from the multiplication context (session, ordered pair), so every session uses a fresh
// permutation. This is the hash SoftSpokenOT / KOS implementations (libOTe, emp-ot) use in place of
// a random oracle; all rows of a batch go through two AES-ECB passes (no per-row hash object).

const PAD_BLOCKS = (W * 32) / 16;

function padKey(ctx: Uint8Array): Uint8Array {
  return taggedHash('mul/pad-key', ctx).subarray(0, 16);
}

if (endianness() !== 'LE') throw new Error('mul: little-endian host required');

/** Aligned little-endian u32 view (copies when the buffer is not 4-aligned). */
function u32View(b: Uint8Array): Uint32Array {
  if ((b.byteOffset & 3) === 0) return new Uint32Array(b.buffer, b.byteOffset, b.byteLength >> 2);
  return new Uint32Array(new Uint8Array(b).buffer, 0, b.byteLength >> 2);
}

/**
 * Pads of `count` rows (16 bytes each, consecutive in `rows`); row i uses OT index j = i mod XI.
 * Returns count·W·32 bytes: row i's W scalars (big-endian, 32 bytes each) at i·W·32. The tweak
 * T_{j,b} is the block whose last four bytes are the little-endian u32 j·2^8 + b (rest zero).
 */
function padBytes(ctx: Uint8Array, rows: Uint8Array, count: number): Uint8Array {
  const c = createCipheriv('aes-128-ecb', padKey(ctx), null);
  c.setAutoPadding(false);
  const yb = c.update(rows.subarray(0, count * 16));
  const y = u32View(yb);
  const z = new Uint32Array(count * PAD_BLOCKS * 4);
  for (let i = 0; i < count; i++) {
    const tw = (i % XI) << 8;
    const y0 = y[4 * i]!;
    const y1 = y[4 * i + 1]!;
    const y2 = y[4 * i + 2]!;
    const y3 = y[4 * i + 3]!;
    for (let b = 0; b < PAD_BLOCKS; b++) {
      const o = (i * PAD_BLOCKS + b) * 4;
      z[o] = y0;
      z[o + 1] = y1;
      z[o + 2] = y2;
      z[o + 3] = y3 ^ (tw | b);
    }
  }
  const eb = c.update(new Uint8Array(z.buffer));
  c.final();
  z.fill(0);
  const e = u32View(eb);
  for (let i = 0; i < count; i++) {
    const y0 = y[4 * i]!;
    const y1 = y[4 * i + 1]!;
    const y2 = y[4 * i + 2]!;
    const y3 = y[4 * i + 3]!;
    for (let b = 0; b < PAD_BLOCKS; b++) {
      const o = (i * PAD_BLOCKS + b) * 4;
      e[o] = e[o]! ^ y0;
      e[o + 1] = e[o + 1]! ^ y1;
      e[o + 2] = e[o + 2]! ^ y2;
      e[o + 3] = e[o + 3]! ^ y3;
    }
  }
  y.fill(0);
  yb.fill(0);
  if (e.buffer !== eb.buffer) eb.fill(0);
  return new Uint8Array(e.buffer, e.byteOffset, e.byteLength);
}

/**
 * 32-byte big-endian values → scalars: a 256-bit value reduced once (2^256 - q < 2^129, so this is
 * within 2^-127 of uniform for the pads). `strict` rejects values ≥ q instead (received scalars).
 */
function scalarsOf(buf: Uint8Array, count: number, strict: string | null): bigint[] {
  const dv = new DataView(buf.buffer, buf.byteOffset, count * 32);
  const out = new Array<bigint>(count);
  for (let i = 0; i < count; i++) {
    const o = i * 32;
    const x =
      (((((dv.getBigUint64(o) << 64n) | dv.getBigUint64(o + 8)) << 64n) | dv.getBigUint64(o + 16)) << 64n) |
      dv.getBigUint64(o + 24);
    if (x >= N) {
      if (strict !== null) throw new VerifyError(`mul: ${strict}[${i}] out of range`);
      out[i] = x - N;
    } else out[i] = x;
  }
  return out;
}

/** Canonical 32-byte big-endian encoding of scalars (0 ≤ x < q) into one buffer. */
function scalarsBytes(xs: readonly bigint[]): Buffer {
  let hex = '';
  for (const x of xs) hex += x.toString(16).padStart(64, '0');
  return Buffer.from(hex, 'hex');
}

function challenges(ctx: Uint8Array, bobMsg: Uint8Array, tauHash: Uint8Array): bigint[] {
  const bm = taggedHash('mul/bob-msg', bobMsg);
  const out: bigint[] = [];
  for (let k = 0; k < W; k++) out.push(hashToScalar('mul/theta', ctx, k, bm, tauHash));
  return out;
}

export interface BobState {
  /** Bob's random input b = <g, β>. */
  b: bigint;
  choices: Uint8Array;
  rows: Uint8Array;
  message: Uint8Array;
}

/** Bob, round 1: sample β, b = <g, β>, and run the OT-extension receiver with choice bits β. */
export function mulBobStart(
  ctx: Uint8Array,
  gadget: bigint[],
  seeds0: Uint8Array,
  seeds1: Uint8Array,
): BobState {
  const choices = new Uint8Array(XI / 8);
  // randomScalar-quality randomness for the choice bits
  const rnd = scalarToBytes(randomScalar());
  const more = scalarToBytes(randomScalar());
  choices.set(rnd.subarray(0, 32), 0);
  choices.set(more.subarray(0, XI / 8 - 32), 32);
  rnd.fill(0);
  more.fill(0);
  let b = 0n;
  for (let j = 0; j < XI; j++) if ((choices[j >> 3]! >> (j & 7)) & 1) b += gadget[j]!;
  b = mod(b);
  const { message, rows } = oteReceiverExtend(ctx, seeds0, seeds1, choices);
  return { b, choices, rows, message };
}

/** Alice, round 2: check Bob's extension, transfer (a, â), return her share c and her message. */
export function mulAlice(
  ctx: Uint8Array,
  gadget: bigint[],
  delta: Uint8Array,
  seeds: Uint8Array,
  a: readonly bigint[],
  bobMsg: Uint8Array,
): { c: bigint[]; message: Uint8Array } {
  if (a.length !== L) throw new Error('mul: input length');
  const rows = oteSenderReceive(ctx, delta, seeds, bobMsg);
  const corr = [a[0]!, a[1]!, randomScalar(), randomScalar()];
  // Rows q_j (first XI) and q_j ⊕ Δ (next XI), hashed in one batch with tweaks j.
  const both = new Uint8Array(2 * XI * KAPPA_BYTES);
  both.set(rows, 0);
  const off = XI * KAPPA_BYTES;
  for (let i = 0; i < off; i++) both[off + i] = rows[i]! ^ delta[i & (KAPPA_BYTES - 1)]!;
  rows.fill(0);
  const padBuf = padBytes(ctx, both, 2 * XI);
  both.fill(0);
  // alpha = pads of q_j (Alice's share of the transfer), pads[XI·W + ·] = pads of q_j ⊕ Δ.
  const pads = scalarsOf(padBuf, 2 * XI * W, null);
  padBuf.fill(0);
  const tau = new Array<bigint>(XI * W);
  for (let j = 0; j < XI; j++) {
    for (let k = 0; k < W; k++) {
      const i = j * W + k;
      // τ = a_k − t0 + t1 ∈ (−q, 2q): one conditional correction instead of a division
      let x = corr[k]! - pads[i]! + pads[XI * W + i]!;
      if (x < 0n) x += N;
      else if (x >= N) x -= N;
      tau[i] = x;
    }
  }
  const tauBuf = scalarsBytes(tau);
  tau.fill(0n);
  const th = challenges(ctx, bobMsg, taggedHash('mul/tau', tauBuf));
  const r = new Array<bigint>(XI * L);
  let c0 = 0n;
  let c1 = 0n;
  const t0 = th[0]!;
  const t1 = th[1]!;
  const h0 = th[L]!;
  const h1 = th[L + 1]!;
  for (let j = 0; j < XI; j++) {
    const g = gadget[j]!;
    const o = j * W;
    const a0 = pads[o]!;
    const a1 = pads[o + 1]!;
    r[j * L] = (t0 * a0 + h0 * pads[o + 2]!) % N;
    r[j * L + 1] = (t1 * a1 + h1 * pads[o + 3]!) % N;
    // accumulate unreduced; one reduction at the end
    c0 += g * a0;
    c1 += g * a1;
  }
  pads.fill(0n);
  const w = new Writer();
  w.bytes(tauBuf);
  for (let k = 0; k < L; k++) w.scalar(mod(th[k]! * corr[k]! + th[k + L]! * corr[k + L]!));
  w.bytes(taggedHash('mul/r', ctx, scalarsBytes(r)));
  corr.fill(0n);
  return { c: [c0 % N, c1 % N], message: w.finish() };
}

/** Bob, finish: verify Alice's check and return his share d (and his input b). */
export function mulBobFinish(
  ctx: Uint8Array,
  gadget: bigint[],
  st: BobState,
  aliceMsg: Uint8Array,
): bigint[] {
  const rd = new Reader(aliceMsg, 'mul');
  const tauBytes = rd.bytes(XI * W * 32, 'tau');
  const tau = scalarsOf(tauBytes, XI * W, 'tau');
  const u: bigint[] = [];
  for (let k = 0; k < L; k++) u.push(rd.scalar(`u[${k}]`));
  const hr = rd.bytes(32, 'H(r)');
  rd.end();
  const th = challenges(ctx, st.message, taggedHash('mul/tau', tauBytes));
  const padBuf = padBytes(ctx, st.rows, XI);
  const t = scalarsOf(padBuf, XI * W, null);
  padBuf.fill(0);
  const r = new Array<bigint>(XI * L);
  const t0 = th[0]!;
  const t1 = th[1]!;
  const h0 = th[L]!;
  const h1 = th[L + 1]!;
  const u0 = u[0]!;
  const u1 = u[1]!;
  let d0 = 0n;
  let d1 = 0n;
  for (let j = 0; j < XI; j++) {
    const beta = (st.choices[j >> 3]! >> (j & 7)) & 1;
    const o = j * W;
    // ζ_{j,k} = β_j·τ_{j,k} − t_{j,k} (unreduced, |ζ| < 2q)
    const z0 = beta ? tau[o]! - t[o]! : -t[o]!;
    const z1 = beta ? tau[o + 1]! - t[o + 1]! : -t[o + 1]!;
    const z2 = beta ? tau[o + 2]! - t[o + 2]! : -t[o + 2]!;
    const z3 = beta ? tau[o + 3]! - t[o + 3]! : -t[o + 3]!;
    // DKLs19 Protocol 1 step 6: r_{j,k} = β_j·u_k − (θ_k ζ_{j,k} + θ̂_k ζ̂_{j,k})
    let r0 = ((beta ? u0 : 0n) - t0 * z0 - h0 * z2) % N;
    let r1 = ((beta ? u1 : 0n) - t1 * z1 - h1 * z3) % N;
    if (r0 < 0n) r0 += N;
    if (r1 < 0n) r1 += N;
    r[j * L] = r0;
    r[j * L + 1] = r1;
    const g = gadget[j]!;
    d0 += g * z0;
    d1 += g * z1;
  }
  t.fill(0n);
  if (!ctEqual(new Uint8Array(taggedHash('mul/r', ctx, scalarsBytes(r))), hr)) {
    throw new VerifyError('mul: multiplication consistency check failed');
  }
  return [mod(d0), mod(d1)];
}

/** Zero Bob's per-session state. */
export function destroyBobState(st: BobState | null | undefined): void {
  if (!st) return;
  st.b = 0n;
  st.choices.fill(0);
  st.rows.fill(0);
}
