// Batched secp256k1 scalar multiplication for the base OT (base-ot.ts), where each side does KAPPA
// independent multiplications of one shape: the base-OT sender computes b·A_k for one scalar b and
// KAPPA points A_k; the receiver computes a_k·G and a_k·B for KAPPA scalars a_k and two fixed points.
//
// All KAPPA "lanes" run the same sequence of point operations in affine coordinates, so each step
// needs one field inversion for all lanes (Montgomery's batch inversion) instead of the projective
// formulas' many multiplications per point; secp256k1's special prime gives a cheap reduction. The
// operation sequence depends only on public sizes (regular signed-digit recoding, every digit odd and
// non-zero, fixed digit count), not on the scalars' bits; as everywhere in JS BigInt code, the
// individual field operations are not constant-time.
//
// Affine addition has exceptional inputs (P = ±Q). Here they require a scalar relation that holds
// with negligible probability for random scalars, independent of the points; a lane that meets one
// is flagged and recomputed with @noble/curves, so results are always exact. A module-load
// self-test compares both paths against noble.

import { invert } from '@noble/curves/abstract/modular.js';
import { _splitEndoScalar } from '@noble/curves/abstract/weierstrass.js';
import { secp256k1 } from '@noble/curves/secp256k1.js';

const Point = secp256k1.Point;
type Point = InstanceType<typeof secp256k1.Point>;
const P = Point.Fp.ORDER;
const N = Point.Fn.ORDER;
const M256 = (1n << 256n) - 1n;
const C = (1n << 32n) + 977n; // 2^256 ≡ 2^32 + 977 (mod p)

/** x mod p for 0 <= x < 2^512. */
function red(x: bigint): bigint {
  x = (x & M256) + (x >> 256n) * C;
  x = (x & M256) + (x >> 256n) * C;
  return x >= P ? x - P : x;
}
const sub = (a: bigint, b: bigint): bigint => (a >= b ? a - b : a - b + P);

// GLV endomorphism of secp256k1: φ(x, y) = (βx, y) = λ·(x, y). Constants as in @noble/curves.
const BETA = 0x7ae96a2b657c07106e64479eac3434e99cf0497512f58995c1396c28719501een;
const GLV_BASIS: [[bigint, bigint], [bigint, bigint]] = [
  [0x3086d221a7d46bcde86c90e49284eb15n, -0xe4437ed6010e88286f547fa90abfe4c3n],
  [0x114ca50f7a8e2f3f657c1108d9d44cfd8n, 0x3086d221a7d46bcde86c90e49284eb15n],
];

/** Affine lanes: X[i], Y[i]; bad[i] set when lane i hit an exceptional case. */
interface Lanes {
  X: bigint[];
  Y: bigint[];
  bad: boolean[];
}

/** Montgomery's trick; zeros are replaced by 1 and their lanes flagged. */
function batchInvert(z: bigint[], bad: boolean[]): bigint[] {
  const n = z.length;
  const pre = new Array<bigint>(n);
  let acc = 1n;
  for (let i = 0; i < n; i++) {
    if (z[i] === 0n) {
      bad[i] = true;
      z[i] = 1n;
    }
    pre[i] = acc;
    acc = red(acc * z[i]!);
  }
  let inv = invert(acc, P);
  const out = new Array<bigint>(n);
  for (let i = n - 1; i >= 0; i--) {
    out[i] = red(inv * pre[i]!);
    inv = red(inv * z[i]!);
  }
  return out;
}

/** L := L + (X2, Y2), lane-wise. */
function addLanes(L: Lanes, X2: readonly bigint[], Y2: readonly bigint[]): void {
  const { X, Y, bad } = L;
  const n = X.length;
  const dx = new Array<bigint>(n);
  for (let i = 0; i < n; i++) dx[i] = sub(X2[i]!, X[i]!);
  const inv = batchInvert(dx, bad);
  for (let i = 0; i < n; i++) {
    const l = red(sub(Y2[i]!, Y[i]!) * inv[i]!);
    const x3 = sub(sub(red(l * l), X[i]!), X2[i]!);
    Y[i] = sub(red(l * sub(X[i]!, x3)), Y[i]!);
    X[i] = x3;
  }
}

/** L := 2·L, lane-wise (y = 0 is impossible: secp256k1 has prime order). */
function doubleLanes(L: Lanes): void {
  const { X, Y, bad } = L;
  const n = X.length;
  const d = new Array<bigint>(n);
  for (let i = 0; i < n; i++) {
    const y2 = Y[i]! << 1n;
    d[i] = y2 >= P ? y2 - P : y2;
  }
  const inv = batchInvert(d, bad);
  for (let i = 0; i < n; i++) {
    const x = X[i]!;
    const l = red(red(3n * red(x * x)) * inv[i]!);
    const x3 = sub(red(l * l), x << 1n >= P ? (x << 1n) - P : x << 1n);
    Y[i] = sub(red(l * sub(x, x3)), Y[i]!);
    X[i] = x3;
  }
}

/**
 * Regular signed-digit recoding of an odd k > 0 (Joye–Tunstall): `count` digits, each odd in
 * [-(2^w - 1), 2^w - 1], the last one positive, k = Σ d_i·2^(w·i).
 */
function recode(k: bigint, w: number, count: number): Int32Array {
  if ((k & 1n) === 0n || k <= 0n) throw new Error('batch-mul: recode expects an odd positive scalar');
  const d = new Int32Array(count);
  const W = 1 << w;
  const mask = BigInt(2 * W - 1);
  const bw = BigInt(w);
  for (let i = 0; i < count - 1; i++) {
    const r = Number(k & mask) - W;
    d[i] = r;
    k = (k - BigInt(r)) >> bw;
  }
  const last = Number(k);
  if (k >= BigInt(W) || (last & 1) !== 1) throw new Error('batch-mul: scalar too large for recoding');
  d[count - 1] = last;
  return d;
}

/** Affine coordinates of a (non-identity) point. */
export const toAffine = (p: Point): [bigint, bigint] => {
  const a = p.toAffine();
  return [a.x, a.y];
};

/**
 * Precomputed affine table of a fixed point Q for the fixed-base method: per window i, the odd
 * multiples (2j+1)·2^(w·i)·Q, j < 2^(w-1). Public data (Q is public).
 */
export class FixedBaseTable {
  readonly point: Point;
  /** Window width; the table has 2^(W-1) points per window. */
  readonly W: number;
  /** Digits for scalars < 2^257 (k or k + n, made odd). */
  readonly DIGITS: number;
  readonly #tx: bigint[];
  readonly #ty: bigint[];

  constructor(Q: Point, W = 5) {
    if (Q.is0()) throw new Error('batch-mul: identity base');
    if (!Number.isInteger(W) || W < 2 || W > 8) throw new Error('batch-mul: window width');
    const DIGITS = Math.ceil(257 / W) + 1;
    this.W = W;
    this.DIGITS = DIGITS;
    const half = 1 << (W - 1);
    const pts: Point[] = [];
    let base = Q;
    for (let i = 0; i < DIGITS; i++) {
      const two = base.double();
      let cur = base;
      for (let j = 0; j < half; j++) {
        pts.push(cur);
        cur = cur.add(two);
      }
      for (let s = 0; s < W; s++) base = base.double();
    }
    // One inversion for the whole table.
    this.#tx = [];
    this.#ty = [];
    const affine = batchAffine(pts);
    for (const [x, y] of affine) {
      this.#tx.push(x);
      this.#ty.push(y);
    }
    this.point = Q;
  }

  /** k_i·Q for every scalar (0 < k_i < n), as affine coordinates. */
  mulMany(scalars: readonly bigint[]): [bigint, bigint][] {
    const { W, DIGITS } = this;
    const half = 1 << (W - 1);
    const n = scalars.length;
    const digits = scalars.map((k) => {
      if (k <= 0n || k >= N) throw new Error('batch-mul: scalar out of range');
      return recode(k & 1n ? k : k + N, W, DIGITS);
    });
    const pick = (win: number, i: number): [bigint, bigint] => {
      const d = digits[i]![win]!;
      const idx = win * half + ((Math.abs(d) - 1) >> 1);
      const y = this.#ty[idx]!;
      return [this.#tx[idx]!, d < 0 ? P - y : y];
    };
    const L: Lanes = { X: new Array(n), Y: new Array(n), bad: new Array(n).fill(false) };
    for (let i = 0; i < n; i++) [L.X[i], L.Y[i]] = pick(0, i);
    const X2 = new Array<bigint>(n);
    const Y2 = new Array<bigint>(n);
    for (let win = 1; win < DIGITS; win++) {
      for (let i = 0; i < n; i++) [X2[i], Y2[i]] = pick(win, i);
      addLanes(L, X2, Y2);
    }
    for (const d of digits) d.fill(0); // the digits encode secret scalars
    return finish(L, (i) => this.point.multiply(scalars[i]!));
  }
  /**
   * k·Q for one scalar 0 < k < n as a Jacobian point {X, Y, Z}, with a caller-supplied mixed
   * addition (ec.ts: Jacobian + affine, exceptional cases exact). Same regular recoding as
   * `mulMany`: one table addition per digit, whatever k's bits are.
   */
  mulOne<J extends { X: bigint; Y: bigint; Z: bigint }>(
    k: bigint,
    addAffine: (acc: J, x: bigint, y: bigint) => void,
  ): J {
    if (k <= 0n || k >= N) throw new Error('batch-mul: scalar out of range');
    const { W, DIGITS } = this;
    const half = 1 << (W - 1);
    const digits = recode(k & 1n ? k : k + N, W, DIGITS);
    const acc = { X: 1n, Y: 1n, Z: 0n } as J;
    for (let win = 0; win < DIGITS; win++) {
      const d = digits[win]!;
      const idx = win * half + ((Math.abs(d) - 1) >> 1);
      const y = this.#ty[idx]!;
      addAffine(acc, this.#tx[idx]!, d < 0 ? P - y : y);
    }
    digits.fill(0);
    return acc;
  }
}

/** Projective -> affine for many points with one inversion. */
function batchAffine(pts: readonly Point[]): [bigint, bigint][] {
  const bad = new Array<boolean>(pts.length).fill(false);
  const inv = batchInvert(
    pts.map((p) => p.Z),
    bad,
  );
  if (bad.some((b) => b)) throw new Error('batch-mul: identity in table');
  return pts.map((p, i) => {
    const iz = inv[i]!;
    return [red(p.X * iz), red(p.Y * iz)];
  });
}

function finish(L: Lanes, fallback: (i: number) => Point): [bigint, bigint][] {
  return L.X.map((x, i) => (L.bad[i] ? toAffine(fallback(i)) : [x, L.Y[i]!]));
}

/**
 * k·A_i for one scalar 0 < k < n and many points (GLV split k = k1 + k2·λ, both halves recoded with
 * the same fixed digit count, interleaved over one doubling chain). Returns affine coordinates.
 */
export function mulSameScalar(points: readonly Point[], k: bigint): [bigint, bigint][] {
  if (k <= 0n || k >= N) throw new Error('batch-mul: scalar out of range');
  const n = points.length;
  const W = 4;
  const half = 1 << (W - 1);
  const DIGITS = Math.ceil(130 / W) + 1;
  const split = _splitEndoScalar(k, GLV_BASIS, N);
  // Odd-ify each half with exactly one correction either way, so the operation sequence does not
  // depend on the parity: even k_j -> (k_j + 1)·Q_j − Q_j, odd k_j -> (k_j + 2)·Q_j − 2·Q_j.
  const e1 = split.k1 & 1n ? 2 : 1;
  const e2 = split.k2 & 1n ? 2 : 1;
  const d1 = recode(split.k1 + BigInt(e1), W, DIGITS);
  const d2 = recode(split.k2 + BigInt(e2), W, DIGITS);
  const s1 = split.k1neg ? -1 : 1;
  const s2 = split.k2neg ? -1 : 1;
  // Per-lane tables of odd multiples (2j+1)·A, j < 2^(W-1), built in lockstep.
  const base = points.map(toAffine);
  const tx: bigint[][] = [base.map((b) => b[0])];
  const ty: bigint[][] = [base.map((b) => b[1])];
  const T: Lanes = { X: [...tx[0]!], Y: [...ty[0]!], bad: new Array(n).fill(false) };
  doubleLanes(T);
  const twoX = [...T.X];
  const twoY = [...T.Y];
  const acc: Lanes = { X: [...tx[0]!], Y: [...ty[0]!], bad: T.bad };
  for (let j = 1; j < half; j++) {
    addLanes(acc, twoX, twoY);
    tx.push([...acc.X]);
    ty.push([...acc.Y]);
  }
  const txEndo = tx.map((row) => row.map((x) => red(BETA * x)));
  const entry = (digit: number, sign: number, endo: boolean, i: number): [bigint, bigint] => {
    const d = digit * sign;
    const j = (Math.abs(d) - 1) >> 1;
    const y = ty[j]![i]!;
    return [(endo ? txEndo : tx)[j]![i]!, d < 0 ? P - y : y];
  };
  const L: Lanes = { X: new Array(n), Y: new Array(n), bad: T.bad };
  const X2 = new Array<bigint>(n);
  const Y2 = new Array<bigint>(n);
  const top = DIGITS - 1;
  for (let i = 0; i < n; i++) [L.X[i], L.Y[i]] = entry(d1[top]!, s1, false, i);
  for (let i = 0; i < n; i++) [X2[i], Y2[i]] = entry(d2[top]!, s2, true, i);
  addLanes(L, X2, Y2);
  for (let win = top - 1; win >= 0; win--) {
    for (let s = 0; s < W; s++) doubleLanes(L);
    for (let i = 0; i < n; i++) [X2[i], Y2[i]] = entry(d1[win]!, s1, false, i);
    addLanes(L, X2, Y2);
    for (let i = 0; i < n; i++) [X2[i], Y2[i]] = entry(d2[win]!, s2, true, i);
    addLanes(L, X2, Y2);
  }
  // The corrections: subtract e_j·Q_j (sign included), 2·Q_j from the table's doubling.
  const corr = (e: number, sign: number, endo: boolean, i: number): [bigint, bigint] => {
    if (e === 1) return entry(1, -sign, endo, i);
    const x = twoX[i]!;
    const y = twoY[i]!;
    return [endo ? red(BETA * x) : x, sign > 0 ? P - y : y];
  };
  for (let i = 0; i < n; i++) [X2[i], Y2[i]] = corr(e1, s1, false, i);
  addLanes(L, X2, Y2);
  for (let i = 0; i < n; i++) [X2[i], Y2[i]] = corr(e2, s2, true, i);
  addLanes(L, X2, Y2);
  d1.fill(0);
  d2.fill(0);
  return finish(L, (i) => points[i]!.multiply(k));
}

/**
 * (x_i, y_i) + Q for every lane; null where the lane is exceptional ((x_i, y_i) = ±Q), which the
 * caller computes with noble instead.
 */
export function addPoint(xy: readonly [bigint, bigint][], Q: Point): ([bigint, bigint] | null)[] {
  const [qx, qy] = toAffine(Q);
  const n = xy.length;
  const L: Lanes = { X: xy.map((p) => p[0]), Y: xy.map((p) => p[1]), bad: new Array(n).fill(false) };
  addLanes(L, new Array(n).fill(qx), new Array(n).fill(qy));
  return L.X.map((x, i) => (L.bad[i] ? null : [x, L.Y[i]!]));
}

/** Compressed SEC1 encoding of an affine point. */
export function encodeAffine([x, y]: readonly [bigint, bigint]): Uint8Array {
  const out = new Uint8Array(33);
  out[0] = y & 1n ? 0x03 : 0x02;
  out.set(Buffer.from(x.toString(16).padStart(64, '0'), 'hex'), 1);
  return out;
}

export function affinePoint([x, y]: readonly [bigint, bigint]): Point {
  return Point.fromAffine({ x, y });
}

let baseTable: FixedBaseTable | undefined;
/** Table for the generator (wider window: built once, ~2.4k points), built on first use. */
export function generatorTable(): FixedBaseTable {
  baseTable ??= new FixedBaseTable(Point.BASE, 7);
  return baseTable;
}

// Known-answer self-test against @noble/curves, once at module load (public values, a few ms).
{
  const ks = [1n, 2n, N - 1n, 0x1234567890abcdefn, (N >> 1n) + 12345n];
  const k = 0x0badc0ffee1234567890n * 0x1000000000000000001n;
  const Q = Point.BASE.multiplyUnsafe(0x5eedn);
  const pts = ks.map((x) => Point.BASE.multiplyUnsafe(x));
  const same = mulSameScalar(pts, k);
  const fixed = new FixedBaseTable(Q, 3).mulMany(ks);
  const plus = addPoint(fixed, Q);
  for (let i = 0; i < ks.length; i++) {
    const Qk = Q.multiplyUnsafe(ks[i]!);
    if (!affinePoint(same[i]!).equals(pts[i]!.multiplyUnsafe(k)))
      throw new Error('batch-mul: self-test failed (same scalar)');
    if (!affinePoint(fixed[i]!).equals(Qk)) throw new Error('batch-mul: self-test failed (fixed base)');
    const sum = plus[i];
    const exceptional = ks[i] === 1n || ks[i] === N - 1n; // Q + Q and -Q + Q: left to the caller
    if (exceptional ? sum !== null : !sum || !affinePoint(sum).equals(Qk.add(Q)))
      throw new Error('batch-mul: self-test failed (add)');
  }
}
