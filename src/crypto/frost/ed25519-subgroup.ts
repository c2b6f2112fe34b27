// Prime-order subgroup check for Ed25519 points: [L]P = O, the same test as noble's
// `Point.isTorsionFree()`, computed about twice as fast for the FROST decoder (suites.ts), where it
// runs once per received point. Same mathematics, cheaper arithmetic:
//   - field reduction specialised to p = 2^255 - 19 (fold the top bits times 19) instead of a generic
//     BigInt remainder, with lazy reduction of sums;
//   - projective coordinates (X:Y:Z) without the extended T: doubling dbl-2008-bbjlp (3M + 4S) and
//     mixed addition madd-2008-bbjlp, both complete on Edwards25519 (a = -1 square, d non-square);
//   - L = 2^252 + c: left-to-right over the non-adjacent form of L, so 252 doublings and ~43 additions
//     of ±P.
// Variable-time; P is a public point. Cross-checked against isTorsionFree() on every torsion coset in
// ed25519-subgroup.test.ts.
import type { EdwardsPoint } from '@noble/curves/abstract/edwards.js';
import { ed25519 } from '@noble/curves/ed25519.js';

const EdPoint = ed25519.Point;
const p = EdPoint.Fp.ORDER; // 2^255 - 19
const L = EdPoint.Fn.ORDER;
const D = EdPoint.CURVE().d;
const M255 = (1n << 255n) - 1n;
const P2 = 2n * p;

/** x mod p for 0 <= x < 2^515 (products of lazily reduced values). */
function red(x: bigint): bigint {
  x = (x & M255) + (x >> 255n) * 19n;
  x = (x & M255) + (x >> 255n) * 19n;
  return x >= p ? x - p : x;
}

/** Non-adjacent form of L, most significant digit first. */
const NAF_L: Int8Array = (() => {
  const digits: number[] = [];
  let k = L;
  while (k > 0n) {
    if (k & 1n) {
      const d = 2 - Number(k & 3n); // ±1
      digits.push(d);
      k -= BigInt(d);
    } else {
      digits.push(0);
    }
    k >>= 1n;
  }
  return Int8Array.from(digits.reverse());
})();

/** True iff [L]P is the identity, i.e. P lies in the prime-order subgroup. */
export function isInPrimeOrderSubgroup(P: EdwardsPoint): boolean {
  const { x: px, y: py } = P.toAffine();
  const nx = px === 0n ? 0n : p - px; // -P = (-x, y)
  let X = px;
  let Y = py;
  let Z = 1n;
  for (let i = 1; i < NAF_L.length; i++) {
    // dbl-2008-bbjlp with a = -1: B = (X+Y)^2, C = X^2, D = Y^2, E = -C, F = E + D, H = Z^2,
    // J = F - 2H, X3 = (B - C - D)·J, Y3 = F·(E - D), Z3 = F·J.
    const B = red((X + Y) * (X + Y));
    const C = red(X * X);
    const Dd = red(Y * Y);
    const F = Dd - C + p; // E + D, in [1, 2p)
    const H = red(Z * Z);
    const J = F - (H << 1n) + P2; // in (0, 4p)
    X = red((B - C - Dd + P2) * J);
    Y = red(F * (P2 - C - Dd)); // F·(E - D) = F·(-C - D)
    Z = red(F * J);
    const digit = NAF_L[i]!;
    if (digit !== 0) {
      // madd-2008-bbjlp (Z2 = 1), a = -1: B = Z1^2, C = X1·X2, D = Y1·Y2, E = d·C·D, F = B - E,
      // G = B + E, X3 = Z1·F·((X1+Y1)(X2+Y2) - C - D), Y3 = Z1·G·(D + C), Z3 = F·G.
      const x2 = digit > 0 ? px : nx;
      const Bq = red(Z * Z);
      const Cq = red(X * x2);
      const Dq = red(Y * py);
      const E = red(red(D * Cq) * Dq);
      const Fq = Bq - E + p;
      const G = Bq + E;
      const ZF = red(Z * Fq);
      X = red(ZF * (red((X + Y) * (x2 + py)) - Cq - Dq + P2));
      Y = red(red(Z * G) * (Dq + Cq));
      Z = red(Fq * G);
    }
  }
  // Identity in projective coordinates: X = 0 and Y = Z (Z is never 0 on this complete curve).
  return X === 0n && Y === Z;
}
