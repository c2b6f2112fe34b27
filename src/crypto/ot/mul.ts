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
import { createHash } from 'node:crypto';
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

/** Random-OT row → W scalar pads (a random oracle: SHAKE256 over context, index and row). */
function pads(ctx: Uint8Array, j: number, row: Uint8Array, out: bigint[]): void {
  const h = createHash('shake256', { outputLength: W * 32 });
  const idx = Buffer.alloc(4);
  idx.writeUInt32BE(j);
  const b = h.update('custos/mul/pad').update(ctx).update(idx).update(row).digest();
  // 32 bytes per scalar: since 2^256 - q < 2^129, reducing mod q is within 2^-127 of uniform.
  for (let k = 0; k < W; k++) {
    const o = k * 32;
    const x =
      (b.readBigUInt64BE(o) << 192n) |
      (b.readBigUInt64BE(o + 8) << 128n) |
      (b.readBigUInt64BE(o + 16) << 64n) |
      b.readBigUInt64BE(o + 24);
    out[k] = x >= N ? x - N : x;
  }
  b.fill(0);
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
  const alpha: bigint[] = new Array(XI * W);
  const t0: bigint[] = new Array(W);
  const t1: bigint[] = new Array(W);
  const flipped = new Uint8Array(KAPPA_BYTES);
  const w = new Writer();
  const tauBuf = Buffer.alloc(XI * W * 32);
  for (let j = 0; j < XI; j++) {
    const row = rows.subarray(j * KAPPA_BYTES, (j + 1) * KAPPA_BYTES);
    for (let k = 0; k < KAPPA_BYTES; k++) flipped[k] = row[k]! ^ delta[k]!;
    pads(ctx, j, row, t0);
    pads(ctx, j, flipped, t1);
    for (let k = 0; k < W; k++) {
      alpha[j * W + k] = t0[k]!;
      const tau = mod(corr[k]! - t0[k]! + t1[k]!);
      tauBuf.write(tau.toString(16).padStart(64, '0'), (j * W + k) * 32, 'hex');
    }
  }
  rows.fill(0);
  flipped.fill(0);
  const th = challenges(ctx, bobMsg, taggedHash('mul/tau', tauBuf));
  const rBuf = Buffer.alloc(XI * L * 32);
  const c = [0n, 0n];
  for (let j = 0; j < XI; j++) {
    const g = gadget[j]!;
    for (let k = 0; k < L; k++) {
      const al = alpha[j * W + k]!;
      const r = mod(th[k]! * al + th[k + L]! * alpha[j * W + k + L]!);
      rBuf.write(r.toString(16).padStart(64, '0'), (j * L + k) * 32, 'hex');
      c[k] = c[k]! + g * al;
    }
  }
  alpha.fill(0n);
  w.bytes(tauBuf);
  for (let k = 0; k < L; k++) w.scalar(mod(th[k]! * corr[k]! + th[k + L]! * corr[k + L]!));
  w.bytes(taggedHash('mul/r', ctx, rBuf));
  corr.fill(0n);
  return { c: c.map(mod), message: w.finish() };
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
  const tau: bigint[] = new Array(XI * W);
  const tb = Buffer.from(tauBytes.buffer, tauBytes.byteOffset, tauBytes.byteLength);
  for (let i = 0; i < XI * W; i++) {
    const o = i * 32;
    const x =
      (tb.readBigUInt64BE(o) << 192n) |
      (tb.readBigUInt64BE(o + 8) << 128n) |
      (tb.readBigUInt64BE(o + 16) << 64n) |
      tb.readBigUInt64BE(o + 24);
    if (x >= N) throw new VerifyError(`mul: tau[${i}] out of range`);
    tau[i] = x;
  }
  const u: bigint[] = [];
  for (let k = 0; k < L; k++) u.push(rd.scalar(`u[${k}]`));
  const hr = rd.bytes(32, 'H(r)');
  rd.end();
  const th = challenges(ctx, st.message, taggedHash('mul/tau', tauBytes));
  const t: bigint[] = new Array(W);
  const zeta: bigint[] = new Array(W);
  const rBuf = Buffer.alloc(XI * L * 32);
  const d = [0n, 0n];
  for (let j = 0; j < XI; j++) {
    const beta = (st.choices[j >> 3]! >> (j & 7)) & 1;
    pads(ctx, j, st.rows.subarray(j * KAPPA_BYTES, (j + 1) * KAPPA_BYTES), t);
    for (let k = 0; k < W; k++) zeta[k] = beta ? tau[j * W + k]! - t[k]! : -t[k]!;
    const g = gadget[j]!;
    for (let k = 0; k < L; k++) {
      // DKLs19 Protocol 1 step 6: r_{j,k} = β_j·u_k − (θ_k ζ_{j,k} + θ̂_k ζ̂_{j,k})
      const r = mod((beta ? u[k]! : 0n) - th[k]! * zeta[k]! - th[k + L]! * zeta[k + L]!);
      rBuf.write(r.toString(16).padStart(64, '0'), (j * L + k) * 32, 'hex');
      d[k] = d[k]! + g * zeta[k]!;
    }
  }
  t.fill(0n);
  zeta.fill(0n);
  if (!ctEqual(new Uint8Array(taggedHash('mul/r', ctx, rBuf)), hr)) {
    throw new VerifyError('mul: multiplication consistency check failed');
  }
  return d.map(mod);
}

/** Zero Bob's per-session state. */
export function destroyBobState(st: BobState | null | undefined): void {
  if (!st) return;
  st.b = 0n;
  st.choices.fill(0);
  st.rows.fill(0);
}
