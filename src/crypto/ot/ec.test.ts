import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import {
  compress,
  decompress,
  ecdsaVerify,
  ecdsaVerifyDigest,
  fromNoble,
  jAdd,
  jAddAffine,
  jEquals,
  jFromAffine,
  jNeg,
  jToAffine,
  mulG,
  mulVarUnsafe,
} from './ec.ts';
import { bytesToBigInt, DecodeError, randomScalar } from './encoding.ts';

const Point = secp256k1.Point;
const N = Point.Fn.ORDER;
const EDGE = [
  0n,
  1n,
  2n,
  3n,
  15n,
  16n,
  17n,
  N - 1n,
  N - 2n,
  N >> 1n,
  (N >> 1n) + 1n,
  1n << 128n,
  (1n << 128n) - 1n,
];

const same = (a: [bigint, bigint] | null, b: InstanceType<typeof Point>) =>
  b.is0() ? a === null : a !== null && a[0] === b.toAffine().x && a[1] === b.toAffine().y;

test('ec: k·G and k·Q match @noble/curves for edge and random scalars', () => {
  const Q = Point.BASE.multiply(randomScalar());
  const q = fromNoble(Q);
  for (const k of [...EDGE, ...Array.from({ length: 40 }, () => randomScalar())]) {
    assert.ok(same(jToAffine(mulG(k)), k === 0n ? Point.ZERO : Point.BASE.multiply(k)), `G·${k}`);
    assert.ok(same(jToAffine(mulVarUnsafe(q, k)), k === 0n ? Point.ZERO : Q.multiply(k)), `Q·${k}`);
  }
});

test('ec: additions with exceptional inputs (P + P, P − P, identity) are exact', () => {
  const k = randomScalar();
  const Pn = Point.BASE.multiply(k);
  const p = fromNoble(Pn);
  const a = mulG(k);
  jAddAffine(a, p[0], p[1]);
  assert.ok(same(jToAffine(a), Pn.double()));
  const b = mulG(k);
  jAdd(b, jNeg(mulG(k)));
  assert.equal(jToAffine(b), null);
  const c = mulG(k);
  jAdd(c, mulG(k));
  assert.ok(same(jToAffine(c), Pn.double()));
  const d = mulG(0n);
  jAdd(d, mulG(k));
  assert.ok(jEquals(d, jFromAffine(p[0], p[1])));
});

test('ec: compression round trip and rejection of invalid encodings', () => {
  for (let i = 0; i < 20; i++) {
    const Pn = Point.BASE.multiply(randomScalar());
    const enc = Pn.toBytes(true);
    const xy = decompress(enc, 't');
    assert.deepEqual(xy, fromNoble(Pn));
    assert.deepEqual(compress(xy), enc);
  }
  const bad = Point.BASE.toBytes(true);
  bad[0] = 4;
  assert.throws(() => decompress(bad, 't'), DecodeError);
  assert.throws(() => decompress(new Uint8Array(33).fill(0xff), 't'), DecodeError);
  assert.throws(() => decompress(new Uint8Array(32), 't'), DecodeError);
  // x with no square root of x^3 + 7
  let x = 1n;
  for (;;) {
    const b = new Uint8Array(33);
    b[0] = 2;
    b.set(Buffer.from(x.toString(16).padStart(64, '0'), 'hex'), 1);
    let valid = true;
    try {
      Point.fromBytes(b);
    } catch {
      valid = false;
    }
    if (!valid) {
      assert.throws(() => decompress(b, 't'), DecodeError);
      break;
    }
    x++;
  }
});

test('ec: ECDSA verification agrees with @noble/curves', () => {
  const sk = secp256k1.utils.randomSecretKey();
  const pk = secp256k1.getPublicKey(sk, true);
  const q = decompress(pk, 'pk');
  for (let i = 0; i < 20; i++) {
    const d = randomBytes(32);
    const sig = secp256k1.sign(d, sk, { prehash: false, lowS: true });
    const r = bytesToBigInt(sig.subarray(0, 32));
    const s = bytesToBigInt(sig.subarray(32));
    const e = bytesToBigInt(d) % N;
    assert.equal(ecdsaVerify(r, s, e, q), true);
    assert.equal(ecdsaVerify(r, s, (e + 1n) % N, q), false);
    assert.equal(ecdsaVerify(r, (s + 1n) % N, e, q), false);
    assert.equal(ecdsaVerify(r, N - s, e, q), false); // high s refused
    assert.equal(ecdsaVerify(0n, s, e, q), false);
    assert.equal(ecdsaVerify(r, 0n, e, q), false);
  }
});

test('ec: ecdsaVerifyDigest (bytes) agrees with @noble/curves and never throws', () => {
  const sk = secp256k1.utils.randomSecretKey();
  const pk = secp256k1.getPublicKey(sk, true);
  const other = secp256k1.getPublicKey(secp256k1.utils.randomSecretKey(), true);
  for (let i = 0; i < 30; i++) {
    const d = randomBytes(32);
    const sig = secp256k1.sign(d, sk, { prehash: false, lowS: true });
    assert.equal(ecdsaVerifyDigest(pk, d, sig), true);
    assert.equal(ecdsaVerifyDigest(secp256k1.getPublicKey(sk, false), d, sig), true);
    assert.equal(ecdsaVerifyDigest(other, d, sig), false);
    const bad = Uint8Array.from(sig);
    bad[i % 64]! ^= 1 << (i % 8);
    assert.equal(ecdsaVerifyDigest(pk, d, bad), secp256k1.verify(bad, d, pk, { prehash: false, lowS: true }));
  }
  const d = randomBytes(32);
  const sig = secp256k1.sign(d, sk, { prehash: false, lowS: true });
  const notOnCurve = Uint8Array.from(pk);
  notOnCurve[0] = 4;
  for (const [k, m, s] of [
    [notOnCurve, d, sig],
    [pk.subarray(1), d, sig],
    [pk, d.subarray(1), sig],
    [pk, d, sig.subarray(1)],
    [new Uint8Array(33), d, sig],
  ] as const)
    assert.equal(ecdsaVerifyDigest(k, m, s), false);
  // a digest ≥ n is reduced as noble does
  const big = new Uint8Array(32).fill(0xff);
  const sigBig = secp256k1.sign(big, sk, { prehash: false, lowS: true });
  assert.equal(ecdsaVerifyDigest(pk, big, sigBig), true);
});
