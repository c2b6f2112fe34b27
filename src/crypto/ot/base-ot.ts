// Base oblivious transfer: the "verified simplest OT" of DKLs18 (ePrint 2018/499, Protocol 7), run
// as a batch of KAPPA random OTs that seed the OT extension (ote.ts). The sender proves knowledge of
// its key b (rogue-key safe); the verification phase (DKLs18 Protocol 7, steps 4-7) makes both
// parties confirm the pads, so a malformed transfer is caught during setup, not during signing.
//
// Roles: the OT-extension *receiver* is the base-OT sender (it learns both pads of every OT); the
// OT-extension *sender* is the base-OT receiver and its choice bits are the extension's secret Δ.
import {
  addPoint,
  affinePoint,
  encodeAffine,
  FixedBaseTable,
  generatorTable,
  mulSameScalar,
} from './batch-mul.ts';
import {
  ctEqual,
  DecodeError,
  DLOG_PROOF_BYTES,
  mulG,
  POINT_BYTES,
  type Point,
  proveDlog,
  Reader,
  randomScalar,
  taggedHash,
  verifyDlog,
  Writer,
} from './encoding.ts';

/** Number of base OTs = OT-extension width (computational security parameter). */
export const KAPPA = 128;
export const KAPPA_BYTES = KAPPA / 8;
export const SEED_BYTES = 32;

/** A check of the counterparty's data failed: provable cheating (or corruption in transit). */
export class VerifyError extends Error {
  override readonly name = 'VerifyError';
}

const bit = (bits: Uint8Array, i: number): number => (bits[i >> 3]! >> (i & 7)) & 1;

/** ρ = H(ctx, k, P) over the compressed encoding of P. */
const pad = (ctx: Uint8Array, k: number, P: Uint8Array): Uint8Array => taggedHash('vsot/pad', ctx, k, P);
const h = (x: Uint8Array): Uint8Array => taggedHash('vsot/h', x);

/** Base-OT sender (DKLs18 Protocol 7, sender side). Ends with both pads of each of KAPPA OTs. */
export class VsotSender {
  #b: bigint;
  readonly #B: Point;
  readonly #ctx: Uint8Array;
  #rho0: Uint8Array | null = null;
  #rho1: Uint8Array | null = null;
  #verified = false;

  constructor(ctx: Uint8Array) {
    this.#ctx = ctx;
    this.#b = randomScalar();
    this.#B = mulG(this.#b);
  }

  /** Step 1: B = b·G with a proof of knowledge of b. */
  message1(): Uint8Array {
    return new Writer()
      .point(this.#B)
      .bytes(proveDlog(this.#b, this.#B, taggedHash('vsot/pok', this.#ctx)))
      .finish();
  }

  /** Step 3 (after the receiver's A_k): derive both pads and send the challenges ξ_k. */
  message3(msg2: Uint8Array): Uint8Array {
    const r = new Reader(msg2, 'vsot/msg2');
    const A: Point[] = [];
    for (let k = 0; k < KAPPA; k++) A.push(r.point(`A[${k}]`));
    r.end();
    const bB = this.#B.multiply(this.#b);
    // b·A_k for all k at once (batch-mul.ts: one shared doubling chain per lane, batched inversions;
    // variable-time in b like multiplyUnsafe was: b is single-use and zeroed below, BigInt arithmetic
    // in JS is not constant-time in any case).
    const bA = mulSameScalar(A, this.#b);
    // b·A_k − b·B; a lane where A_k = ±B (only a cheating receiver sends that) takes noble's path.
    const diff = addPoint(bA, bB.negate());
    const enc0 = bA.map(encodeAffine);
    const enc1 = diff.map((d, k) => (d ? encodeAffine(d) : affinePoint(bA[k]!).subtract(bB).toBytes(true)));
    const rho0 = new Uint8Array(KAPPA * 32);
    const rho1 = new Uint8Array(KAPPA * 32);
    const w = new Writer();
    for (let k = 0; k < KAPPA; k++) {
      const p0 = pad(this.#ctx, k, enc0[k]!);
      const p1 = pad(this.#ctx, k, enc1[k]!);
      rho0.set(p0, k * 32);
      rho1.set(p1, k * 32);
      const xi = h(h(p0));
      const x1 = h(h(p1));
      for (let i = 0; i < 32; i++) xi[i]! ^= x1[i]!;
      w.bytes(xi);
    }
    this.#b = 0n;
    this.#rho0 = rho0;
    this.#rho1 = rho1;
    return w.finish();
  }

  /** Step 5: check each response equals H(H(ρ⁰_k)), then open H(ρ⁰_k), H(ρ¹_k). */
  message5(msg4: Uint8Array): Uint8Array {
    const rho0 = this.#rho0;
    const rho1 = this.#rho1;
    if (!rho0 || !rho1) throw new Error('vsot: out of order');
    const r = new Reader(msg4, 'vsot/msg4');
    const w = new Writer();
    let ok = true;
    for (let k = 0; k < KAPPA; k++) {
      const resp = r.bytes(32, `response[${k}]`);
      const h0 = h(rho0.subarray(k * 32, k * 32 + 32));
      ok = ctEqual(resp, h(h0)) && ok;
      w.bytes(h0).bytes(h(rho1.subarray(k * 32, k * 32 + 32)));
    }
    r.end();
    // Openings are H(ρ), not ρ, so sending them after a failed check reveals no pad. The caller
    // reports the failure one round later (deferCheck), which lets the receiver first check *our*
    // challenges: a tampered ξ is then blamed on its sender rather than on the receiver.
    this.#verified = ok;
    this.#failed = !ok;
    return w.finish();
  }

  /** True when the receiver's response did not verify (see message5). */
  get responseFailed(): boolean {
    return this.#failed;
  }
  #failed = false;

  /** Both pads per OT, KAPPA × 32 bytes each; only after verification. Caller owns (and zeroes) them. */
  takeSeeds(): { seeds0: Uint8Array; seeds1: Uint8Array } {
    if (!this.#verified || !this.#rho0 || !this.#rho1) throw new Error('vsot: not verified');
    const out = { seeds0: this.#rho0, seeds1: this.#rho1 };
    this.#rho0 = null;
    this.#rho1 = null;
    return out;
  }

  destroy(): void {
    this.#b = 0n;
    this.#rho0?.fill(0);
    this.#rho1?.fill(0);
    this.#rho0 = null;
    this.#rho1 = null;
  }
}

/** Base-OT receiver with KAPPA choice bits (DKLs18 Protocol 7, receiver side). */
export class VsotReceiver {
  readonly #ctx: Uint8Array;
  readonly #choices: Uint8Array;
  #rho: Uint8Array | null = null;
  #xi: Uint8Array | null = null;
  #done = false;

  constructor(ctx: Uint8Array, choices: Uint8Array) {
    if (choices.length !== KAPPA_BYTES) throw new Error('vsot: choice bits length');
    this.#ctx = ctx;
    this.#choices = choices;
  }

  /** Step 2: verify the sender's proof, then A_k = a_k·G + ω_k·B and ρ^ω_k = H(a_k·B). */
  message2(msg1: Uint8Array): Uint8Array {
    const r = new Reader(msg1, 'vsot/msg1');
    const B = r.point('B');
    const proof = r.bytes(DLOG_PROOF_BYTES, 'proof');
    r.end();
    if (!verifyDlog(B, proof, taggedHash('vsot/pok', this.#ctx))) {
      throw new VerifyError('vsot: proof of knowledge of B does not verify');
    }
    const rho = new Uint8Array(KAPPA * 32);
    const a: bigint[] = [];
    for (let k = 0; k < KAPPA; k++) a.push(randomScalar());
    // a_k·G and a_k·B for all k (batch-mul.ts: fixed-base tables, one digit sequence for every
    // scalar, batched inversions), then a_k·G + B for every k, selected by ω_k, so the work does not
    // depend on the choice bits.
    const aG = generatorTable().mulMany(a);
    const aB = new FixedBaseTable(B).mulMany(a);
    const aGB = addPoint(aG, B);
    const w = new Writer();
    for (let k = 0; k < KAPPA; k++) {
      const plusB = aGB[k] ? encodeAffine(aGB[k]!) : affinePoint(aG[k]!).add(B).toBytes(true);
      w.bytes(bit(this.#choices, k) ? plusB : encodeAffine(aG[k]!));
      rho.set(pad(this.#ctx, k, encodeAffine(aB[k]!)), k * 32);
      a[k] = 0n;
    }
    this.#rho = rho;
    return w.finish();
  }

  /** Step 4: respond H(H(ρ^ω_k)) ⊕ ω_k·ξ_k. */
  message4(msg3: Uint8Array): Uint8Array {
    const rho = this.#rho;
    if (!rho) throw new Error('vsot: out of order');
    const r = new Reader(msg3, 'vsot/msg3');
    const xi = new Uint8Array(r.bytes(KAPPA * 32, 'challenges'));
    r.end();
    const w = new Writer();
    for (let k = 0; k < KAPPA; k++) {
      const resp = h(h(rho.subarray(k * 32, k * 32 + 32)));
      if (bit(this.#choices, k)) for (let i = 0; i < 32; i++) resp[i]! ^= xi[k * 32 + i]!;
      w.bytes(resp);
    }
    this.#xi = xi;
    return w.finish();
  }

  /** Step 6: check the openings against our pad and the challenge. */
  finish(msg5: Uint8Array): void {
    const rho = this.#rho;
    const xi = this.#xi;
    if (!rho || !xi) throw new Error('vsot: out of order');
    const r = new Reader(msg5, 'vsot/msg5');
    let ok = true;
    for (let k = 0; k < KAPPA; k++) {
      const o0 = r.bytes(32, `open0[${k}]`);
      const o1 = r.bytes(32, `open1[${k}]`);
      const mine = h(rho.subarray(k * 32, k * 32 + 32));
      ok = ctEqual(bit(this.#choices, k) ? o1 : o0, mine) && ok;
      const x = h(o0);
      const x1 = h(o1);
      for (let i = 0; i < 32; i++) x[i]! ^= x1[i]!;
      ok = ctEqual(x, xi.subarray(k * 32, k * 32 + 32)) && ok;
    }
    r.end();
    if (!ok) throw new VerifyError('vsot: sender openings do not verify');
    this.#done = true;
  }

  /** The chosen pads ρ^{Δ_k}_k, KAPPA × 32 bytes. Caller owns (and zeroes) them. */
  takeSeeds(): Uint8Array {
    if (!this.#done || !this.#rho) throw new Error('vsot: not verified');
    const out = this.#rho;
    this.#rho = null;
    return out;
  }

  destroy(): void {
    this.#rho?.fill(0);
    this.#rho = null;
  }
}

export { DecodeError, POINT_BYTES };
