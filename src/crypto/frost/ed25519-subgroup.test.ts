import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { ed25519 } from '@noble/curves/ed25519.js';
import { isInPrimeOrderSubgroup } from './ed25519-subgroup.ts';
import { ed25519Suite } from './suites.ts';

const E = ed25519.Point;
const L = E.Fn.ORDER;

/** [L]R: the torsion component of R, scaled by L (a unit mod 8), so of the same order. */
function torsionPart(R: InstanceType<typeof E>) {
  let D = R;
  for (let j = 0; j < 252; j++) D = D.double();
  return D.add(R.multiplyUnsafe(L - (1n << 252n)));
}

test('ed25519 subgroup check agrees with noble isTorsionFree() on every torsion coset', () => {
  const torsion: InstanceType<typeof E>[] = [];
  const orders = new Set<number>();
  while (orders.size < 4 || torsion.length < 16) {
    let R: InstanceType<typeof E>;
    try {
      R = E.fromBytes(randomBytes(32), false);
    } catch {
      continue;
    }
    const T = torsionPart(R);
    let k = 1;
    for (let Q = T; !Q.is0(); Q = Q.add(T)) k++;
    orders.add(k);
    torsion.push(T);
  }
  assert.deepEqual([...orders].sort(), [1, 2, 4, 8]);
  for (let i = 0; i < 64; i++) {
    const P = E.BASE.multiply(BigInt(`0x${randomBytes(31).toString('hex')}`) + 1n);
    const T = torsion[i % torsion.length]!;
    for (const Q of [P, P.add(T), T]) {
      if (Q.is0()) continue;
      const A = E.fromAffine(Q.toAffine());
      assert.equal(isInPrimeOrderSubgroup(A), A.isTorsionFree());
      if (!A.isTorsionFree()) assert.throws(() => ed25519Suite.decodePoint(A.toBytes()), /subgroup/);
      else assert.ok(ed25519Suite.decodePoint(A.toBytes()).equals(A));
    }
  }
});
