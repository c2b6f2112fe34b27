import assert from 'node:assert/strict';
import { test } from 'node:test';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import {
  addPoint,
  affinePoint,
  encodeAffine,
  FixedBaseTable,
  generatorTable,
  mulSameScalar,
  toAffine,
} from './batch-mul.ts';
import { randomScalar } from './encoding.ts';

const Point = secp256k1.Point;
const N = Point.Fn.ORDER;
const EDGE = [
  1n,
  2n,
  3n,
  4n,
  15n,
  16n,
  17n,
  N - 1n,
  N - 2n,
  N >> 1n,
  1n << 128n,
  (1n << 128n) + 1n,
  1n << 255n,
];

test('batch-mul: same scalar times many points equals noble (random and edge scalars)', () => {
  const pts = Array.from({ length: 20 }, () => Point.BASE.multiply(randomScalar()));
  for (const k of [...EDGE, ...Array.from({ length: 10 }, randomScalar)]) {
    const got = mulSameScalar(pts, k);
    pts.forEach((p, i) => {
      assert.ok(affinePoint(got[i]!).equals(p.multiply(k)), `k=${k} lane ${i}`);
    });
  }
});

test('batch-mul: fixed-base table equals noble, for G and another point', () => {
  const ks = [...EDGE, ...Array.from({ length: 40 }, randomScalar)];
  const Q = Point.BASE.multiply(randomScalar());
  const viaQ = new FixedBaseTable(Q).mulMany(ks);
  const viaG = generatorTable().mulMany(ks);
  ks.forEach((k, i) => {
    assert.ok(affinePoint(viaQ[i]!).equals(Q.multiply(k)), `Q, k=${k}`);
    assert.ok(affinePoint(viaG[i]!).equals(Point.BASE.multiply(k)), `G, k=${k}`);
  });
  assert.throws(() => generatorTable().mulMany([0n]));
  assert.throws(() => generatorTable().mulMany([N]));
});

test('batch-mul: addPoint flags exceptional lanes (P = ±Q) and adds the rest', () => {
  const Q = Point.BASE.multiply(randomScalar());
  const R = Point.BASE.multiply(randomScalar());
  const out = addPoint([toAffine(Q), toAffine(Q.negate()), toAffine(R)], Q);
  assert.equal(out[0], null);
  assert.equal(out[1], null);
  assert.ok(affinePoint(out[2]!).equals(R.add(Q)));
  assert.deepEqual(encodeAffine(toAffine(R)), R.toBytes(true));
});
