import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { HDKey } from '@scure/bip32';
import { deriveSecp256k1, parseNonHardenedPath, xpubOf } from './hd.ts';

test('public derivation and tweak match @scure/bip32 from our xpub', () => {
  for (let i = 0; i < 20; i++) {
    const root = HDKey.fromMasterSeed(randomBytes(32));
    const xpub = xpubOf(root.publicKey!, root.chainCode!);
    assert.equal(xpub, root.publicExtendedKey);
    const path = `m/${i}/${(i * 7919) % 1000}/3`;
    const d = deriveSecp256k1(root.publicKey!, root.chainCode!, path);
    const ref = HDKey.fromExtendedKey(xpub).derive(path);
    assert.deepEqual(d.publicKey, ref.publicKey);
    assert.deepEqual(d.chainCode, ref.chainCode);
    // the tweak applied to the parent secret gives the child secret
    const k = secp256k1.Point.Fn.fromBytes(root.privateKey!);
    const child = secp256k1.Point.Fn.add(k, d.tweak);
    assert.deepEqual(secp256k1.Point.BASE.multiply(child).toBytes(true), ref.publicKey);
  }
});

test('paths: hardened and malformed refused', () => {
  assert.deepEqual(parseNonHardenedPath('m'), []);
  assert.deepEqual(parseNonHardenedPath('m/0/7'), [0, 7]);
  for (const bad of ["m/0'", 'm/1h', '0/1', 'm/-1', 'm/01', 'm/2147483648', 'm//1', 'm/1/']) {
    assert.throws(() => parseNonHardenedPath(bad), /hd:/, bad);
  }
});
