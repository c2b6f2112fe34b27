// Single-point secp256k1 arithmetic for the presign/sign hot paths (dkls23/sign.ts): Jacobian
// coordinates with the reduction specialised to p = 2^256 − 2^32 − 977 (as in batch-mul.ts), where
// @noble/curves uses complete projective formulas over a generic field object. Used for
//   • k·G with the generator table of batch-mul.ts (regular signed-digit recoding: the sequence of
//     point operations does not depend on k's bits, as for the base OT) — `mulG`;
//   • k·P for public or single-use scalars (GLV split + interleaved width-5 NAF, variable time) —
//     `mulVarUnsafe`;
//   • (de)compression and ECDSA verification.
// Exceptional additions (P = ±Q, identity) are handled exactly (branches), so results are always
// correct; a module-load self-test and ec.test.ts compare against @noble/curves.
import { invert } from '@noble/curves/abstract/modular.js';
import { _splitEndoScalar } from '@noble/curves/abstract/weierstrass.js';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { generatorTable } from './batch-mul.ts';
import { DecodeError } from './encoding.ts';

const NoblePoint = secp256k1.Point;
type NoblePoint = InstanceType<typeof secp256k1.Point>;
const P = NoblePoint.Fp.ORDER;
const N = NoblePoint.Fn.ORDER;
const M256 = (1n << 256n) - 1n;
const C = (1n << 32n) + 977n;

/** x mod p for 0 <= x < 2^512. */
const red = (x: bigint): bigint => {
  x = (x & M256) + (x >> 256n) * C;
  x = (x & M256) + (x >> 256n) * C;
  return x >= P ? x - P : x;
};
const sub = (a: bigint, b: bigint): bigint => (a >= b ? a - b : a - b + P);
const add = (a: bigint, b: bigint): bigint => {
  const s = a + b;
  return s >= P ? s - P : s;
};

/** Jacobian point (x = X/Z², y = Y/Z³); Z = 0 is the identity. Mutable. */
export interface Jac {
  X: bigint;
  Y: bigint;
  Z: bigint;
}

export const jIdentity = (): Jac => ({ X: 1n, Y: 1n, Z: 0n });
export const jFromAffine = (x: bigint, y: bigint): Jac => ({ X: x, Y: y, Z: 1n });
const jCopy = (p: Jac): Jac => ({ X: p.X, Y: p.Y, Z: p.Z });

/** p := 2p (dbl-2009-l, a = 0). */
export function jDouble(p: Jac): void {
  if (p.Z === 0n) return;
  const A = red(p.X * p.X);
  const B = red(p.Y * p.Y);
  const CC = red(B * B);
  const xb = add(p.X, B);
  const D0 = sub(sub(red(xb * xb), A), CC);
  const D = add(D0, D0);
  const E = add(add(A, A), A);
  const F = red(E * E);
  const X3 = sub(F, add(D, D));
  const C2 = add(CC, CC);
  const C4 = add(C2, C2);
  const Y3 = sub(red(E * sub(D, X3)), add(C4, C4));
  const yz = red(p.Y * p.Z);
  p.Z = add(yz, yz);
  p.X = X3;
  p.Y = Y3;
}

/** p := p + (x2, y2) (madd-2007-bl), exceptional cases exact. */
export function jAddAffine(p: Jac, x2: bigint, y2: bigint): void {
  if (p.Z === 0n) {
    p.X = x2;
    p.Y = y2;
    p.Z = 1n;
    return;
  }
  const Z1Z1 = red(p.Z * p.Z);
  const U2 = red(x2 * Z1Z1);
  const S2 = red(y2 * red(p.Z * Z1Z1));
  const H = sub(U2, p.X);
  const r0 = sub(S2, p.Y);
  if (H === 0n) {
    if (r0 === 0n) jDouble(p);
    else p.Z = 0n;
    return;
  }
  const HH = red(H * H);
  const HH2 = add(HH, HH);
  const I = add(HH2, HH2);
  const J = red(H * I);
  const r = add(r0, r0);
  const V = red(p.X * I);
  const X3 = sub(sub(red(r * r), J), add(V, V));
  const yj = red(p.Y * J);
  const Y3 = sub(red(r * sub(V, X3)), add(yj, yj));
  const zh = add(p.Z, H);
  p.Z = sub(sub(red(zh * zh), Z1Z1), HH);
  p.X = X3;
  p.Y = Y3;
}

/** p := p + q (add-2007-bl), exceptional cases exact. */
export function jAdd(p: Jac, q: Jac): void {
  if (q.Z === 0n) return;
  if (p.Z === 0n) {
    p.X = q.X;
    p.Y = q.Y;
    p.Z = q.Z;
    return;
  }
  const Z1Z1 = red(p.Z * p.Z);
  const Z2Z2 = red(q.Z * q.Z);
  const U1 = red(p.X * Z2Z2);
  const U2 = red(q.X * Z1Z1);
  const S1 = red(p.Y * red(q.Z * Z2Z2));
  const S2 = red(q.Y * red(p.Z * Z1Z1));
  const H = sub(U2, U1);
  const r0 = sub(S2, S1);
  if (H === 0n) {
    if (r0 === 0n) jDouble(p);
    else p.Z = 0n;
    return;
  }
  const h2 = add(H, H);
  const I = red(h2 * h2);
  const J = red(H * I);
  const r = add(r0, r0);
  const V = red(U1 * I);
  const X3 = sub(sub(red(r * r), J), add(V, V));
  const sj = red(S1 * J);
  const Y3 = sub(red(r * sub(V, X3)), add(sj, sj));
  const zz = add(p.Z, q.Z);
  p.Z = red(sub(sub(red(zz * zz), Z1Z1), Z2Z2) * H);
  p.X = X3;
  p.Y = Y3;
}

export const jNeg = (p: Jac): Jac => ({ X: p.X, Y: p.Y === 0n ? 0n : P - p.Y, Z: p.Z });

export function jEquals(a: Jac, b: Jac): boolean {
  if (a.Z === 0n || b.Z === 0n) return a.Z === 0n && b.Z === 0n;
  const z1 = red(a.Z * a.Z);
  const z2 = red(b.Z * b.Z);
  if (red(a.X * z2) !== red(b.X * z1)) return false;
  return red(a.Y * red(z2 * b.Z)) === red(b.Y * red(z1 * a.Z));
}

/** Affine coordinates of many points with one inversion; null for the identity. */
export function jToAffineMany(ps: readonly Jac[]): ([bigint, bigint] | null)[] {
  const n = ps.length;
  const pre = new Array<bigint>(n);
  let acc = 1n;
  for (let i = 0; i < n; i++) {
    pre[i] = acc;
    if (ps[i]!.Z !== 0n) acc = red(acc * ps[i]!.Z);
  }
  let inv = invert(acc, P);
  const out = new Array<[bigint, bigint] | null>(n);
  for (let i = n - 1; i >= 0; i--) {
    const p = ps[i]!;
    if (p.Z === 0n) {
      out[i] = null;
      continue;
    }
    const zi = red(inv * pre[i]!);
    inv = red(inv * p.Z);
    const zi2 = red(zi * zi);
    out[i] = [red(p.X * zi2), red(p.Y * red(zi2 * zi))];
  }
  return out;
}

export const jToAffine = (p: Jac): [bigint, bigint] | null => jToAffineMany([p])[0]!;

/** Compressed SEC1 encoding of an affine point. */
export function compress([x, y]: readonly [bigint, bigint]): Uint8Array {
  const out = Buffer.from(`0${y & 1n ? 3 : 2}${x.toString(16).padStart(64, '0')}`, 'hex');
  return new Uint8Array(out.buffer, out.byteOffset, 33);
}

function powP(a: bigint, e: bigint): bigint {
  // 4-bit fixed window
  const t: bigint[] = [1n, a];
  for (let i = 2; i < 16; i++) t.push(red(t[i - 1]! * a));
  let r = 1n;
  for (let i = 252; i >= 0; i -= 4) {
    r = red(r * r);
    r = red(r * r);
    r = red(r * r);
    r = red(r * r);
    const d = Number((e >> BigInt(i)) & 15n);
    if (d) r = red(r * t[d]!);
  }
  return r;
}

const SQRT_EXP = (P + 1n) / 4n;

/** Decodes a compressed point; throws DecodeError unless it is a valid curve point (never the identity). */
export function decompress(b: Uint8Array, what: string): [bigint, bigint] {
  if (b.length !== 33) throw new DecodeError(`${what}: expected 33-byte compressed point`);
  const h = b[0]!;
  if (h !== 2 && h !== 3) throw new DecodeError(`${what}: not a valid curve point`);
  const x = BigInt(`0x${Buffer.from(b.buffer, b.byteOffset + 1, 32).toString('hex')}`);
  if (x >= P) throw new DecodeError(`${what}: not a valid curve point`);
  const y2 = add(red(red(x * x) * x), 7n);
  let y = powP(y2, SQRT_EXP);
  if (red(y * y) !== y2) throw new DecodeError(`${what}: not a valid curve point`);
  if ((y & 1n) !== BigInt(h & 1)) y = P - y;
  return [x, y];
}

/** k·G (0 <= k < n) over the shared generator table, regular recoding (see batch-mul.ts). */
export function mulG(k: bigint): Jac {
  if (k === 0n) return jIdentity();
  return generatorTable().mulOne(k, jAddAffine);
}

// GLV endomorphism: φ(x, y) = (βx, y) = λ·(x, y); in Jacobian (βX, Y, Z).
const BETA = 0x7ae96a2b657c07106e64479eac3434e99cf0497512f58995c1396c28719501een;
const GLV_BASIS: [[bigint, bigint], [bigint, bigint]] = [
  [0x3086d221a7d46bcde86c90e49284eb15n, -0xe4437ed6010e88286f547fa90abfe4c3n],
  [0x114ca50f7a8e2f3f657c1108d9d44cfd8n, 0x3086d221a7d46bcde86c90e49284eb15n],
];

/** Width-w NAF digits of k >= 0, least significant first. */
function wnaf(k: bigint, w: number): Int8Array {
  const out = new Int8Array(132);
  const W = 1 << w;
  const mask = BigInt(W - 1);
  let i = 0;
  while (k > 0n) {
    if (k & 1n) {
      let d = Number(k & mask);
      if (d >= W >> 1) d -= W;
      out[i] = d;
      k -= BigInt(d);
    }
    k >>= 1n;
    i++;
  }
  return out;
}

/** Affine odd multiples Q, 3Q, …, 15Q of a public point and their images under φ (x ↦ βx). */
export interface VarBaseTable {
  x: bigint[];
  xe: bigint[];
  y: bigint[];
}

const VAR_W = 5;

export function varBaseTable(Q: readonly [bigint, bigint]): VarBaseTable {
  const t: Jac[] = [jFromAffine(Q[0], Q[1])];
  const two = jFromAffine(Q[0], Q[1]);
  jDouble(two);
  for (let i = 1; i < 1 << (VAR_W - 2); i++) {
    const nx = jCopy(t[i - 1]!);
    jAdd(nx, two);
    t.push(nx);
  }
  const a = jToAffineMany(t);
  // (2i+1)·Q = O would need the order of Q to divide 2i+1 < n: impossible for Q ≠ O
  if (a.some((p) => p === null)) throw new Error('ec: identity in table');
  const x = a.map((p) => p![0]);
  return { x, xe: x.map((v) => red(BETA * v)), y: a.map((p) => p![1]) };
}

/**
 * k·Q for an affine point Q (or its table) and 0 <= k < n, variable time (for public or single-use
 * scalars only: the running time depends on k).
 */
export function mulVarUnsafe(Q: readonly [bigint, bigint] | VarBaseTable, k: bigint): Jac {
  if (k === 0n) return jIdentity();
  const T = 'xe' in Q ? Q : varBaseTable(Q);
  const { k1neg, k1, k2neg, k2 } = _splitEndoScalar(k, GLV_BASIS, N);
  const d1 = wnaf(k1, VAR_W);
  const d2 = wnaf(k2, VAR_W);
  const acc = jIdentity();
  let top = 131;
  while (top > 0 && d1[top] === 0 && d2[top] === 0) top--;
  for (let i = top; i >= 0; i--) {
    jDouble(acc);
    let d = d1[i]!;
    if (d !== 0) {
      if (k1neg) d = -d;
      const j = ((d < 0 ? -d : d) - 1) >> 1;
      jAddAffine(acc, T.x[j]!, d > 0 ? T.y[j]! : P - T.y[j]!);
    }
    d = d2[i]!;
    if (d !== 0) {
      if (k2neg) d = -d;
      const j = ((d < 0 ? -d : d) - 1) >> 1;
      jAddAffine(acc, T.xe[j]!, d > 0 ? T.y[j]! : P - T.y[j]!);
    }
  }
  return acc;
}

/** Affine coordinates of a noble point (public data). */
export function fromNoble(p: NoblePoint): [bigint, bigint] {
  const a = p.toAffine();
  return [a.x, a.y];
}

/**
 * ECDSA verification (r, s in [1, n), s low) of a prehashed scalar e under the affine public key Q:
 * R = (e/s)·G + (r/s)·Q ≠ O and R.x mod n = r. Public inputs only.
 */
export function ecdsaVerify(
  r: bigint,
  s: bigint,
  e: bigint,
  Q: readonly [bigint, bigint] | VarBaseTable,
): boolean {
  if (r <= 0n || r >= N || s <= 0n || s > N >> 1n) return false;
  const si = invert(s, N);
  const R = mulVarUnsafe(Q, (r * si) % N);
  const u1 = (e * si) % N;
  if (u1 !== 0n) {
    const g = mulG(u1);
    jAdd(R, g);
  }
  if (R.Z === 0n) return false;
  // R.x mod n == r without inversion: X == x·Z² for x ∈ {r, r + n} (x < p)
  const z2 = red(R.Z * R.Z);
  if (red(r * z2) === R.X) return true;
  return r + N < P && red((r + N) * z2) === R.X;
}

const keyCache = new Map<string, [bigint, bigint]>();

/**
 * ECDSA verification of a 64-byte (r ‖ s) signature, low s, over a 32-byte digest (read as a
 * big-endian integer mod n, as @noble/curves' prehash: false) under a SEC1 key (33 or 65 bytes).
 * Public inputs only; never throws. About 2× faster than @noble/curves' verify (ec.test.ts checks
 * they agree); decoded keys are cached, since one key verifies many signatures.
 */
export function ecdsaVerifyDigest(publicKey: Uint8Array, digest: Uint8Array, signature: Uint8Array): boolean {
  if (publicKey.length !== 33 && publicKey.length !== 65) return false;
  if (digest.length !== 32 || signature.length !== 64) return false;
  const k = Buffer.from(publicKey).toString('hex');
  let q = keyCache.get(k);
  if (!q) {
    try {
      if (publicKey.length === 33) q = decompress(publicKey, 'public key');
      else {
        const point = NoblePoint.fromBytes(publicKey);
        point.assertValidity();
        q = fromNoble(point);
      }
    } catch {
      return false;
    }
    if (keyCache.size >= 1000) keyCache.clear();
    keyCache.set(k, q);
  }
  const sig = Buffer.from(signature.buffer, signature.byteOffset, 64);
  const r = BigInt(`0x${sig.toString('hex', 0, 32)}`);
  const s = BigInt(`0x${sig.toString('hex', 32, 64)}`);
  const e = BigInt(`0x${Buffer.from(digest.buffer, digest.byteOffset, 32).toString('hex')}`) % N;
  return ecdsaVerify(r, s, e, q);
}

// Known-answer self-test against @noble/curves at module load (public values).
{
  const ks = [1n, 2n, 3n, N - 1n, N - 2n, 0x1234567890abcdefn, (N >> 1n) + 12345n, N >> 7n];
  const Q = NoblePoint.BASE.multiplyUnsafe(0x5eed5eedn);
  const q = fromNoble(Q);
  for (const k of ks) {
    const a = jToAffine(mulVarUnsafe(q, k));
    const g = jToAffine(mulG(k));
    if (!a || !NoblePoint.fromAffine({ x: a[0], y: a[1] }).equals(Q.multiplyUnsafe(k)))
      throw new Error('ec: self-test failed (variable base)');
    if (!g || !NoblePoint.fromAffine({ x: g[0], y: g[1] }).equals(NoblePoint.BASE.multiplyUnsafe(k)))
      throw new Error('ec: self-test failed (fixed base)');
  }
  const enc = Q.toBytes(true);
  const [dx, dy] = decompress(enc, 'self-test');
  if (dx !== q[0] || dy !== q[1] || !Buffer.from(compress(q)).equals(Buffer.from(enc)))
    throw new Error('ec: self-test failed (encoding)');
}
