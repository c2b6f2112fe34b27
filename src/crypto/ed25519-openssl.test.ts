import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ed25519 } from '@noble/curves/ed25519.js';
import fc from 'fast-check';
import { ed25519Verify, ed25519VerifyHex } from './ed25519-openssl.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const L = ed25519.Point.Fn.ORDER;

describe('Ed25519 verification through OpenSSL', () => {
  it('RFC 8032 §7.1 test 1 verifies, and one flipped bit anywhere does not', () => {
    const pub = Buffer.from('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a', 'hex');
    const sig = Buffer.from(
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
      'hex',
    );
    const msg = new Uint8Array(0);
    assert.equal(ed25519Verify(pub, msg, sig), true);
    for (let bit = 0; bit < 512; bit += 37) {
      const bad = Buffer.from(sig);
      bad[bit >> 3]! ^= 1 << (bit & 7);
      assert.equal(ed25519Verify(pub, msg, bad), false, `bit ${bit}`);
    }
    assert.equal(ed25519Verify(pub, new Uint8Array([0]), sig), false);
  });

  it('agrees with @noble/curves on valid, altered and cross-key signatures', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ maxLength: 300 }),
        fc.nat(511),
        (sk, otherSk, msg, bit) => {
          const pub = ed25519.getPublicKey(sk);
          const sig = ed25519.sign(msg, sk);
          assert.equal(ed25519Verify(pub, msg, sig), true);
          assert.equal(ed25519VerifyHex(hex(pub), msg, hex(sig)), true);
          const bad = Uint8Array.from(sig);
          bad[bit >> 3]! ^= 1 << (bit & 7);
          assert.equal(ed25519Verify(pub, msg, bad), ed25519.verify(bad, msg, pub, { zip215: false }));
          const other = ed25519.getPublicKey(otherSk);
          if (hex(other) !== hex(pub)) assert.equal(ed25519Verify(other, msg, sig), false);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('rejects a malleated S (S + L) as noble does', () => {
    const sk = ed25519.utils.randomSecretKey();
    const pub = ed25519.getPublicKey(sk);
    const msg = new TextEncoder().encode('malleability');
    const sig = ed25519.sign(msg, sk);
    let s = 0n;
    for (let i = 31; i >= 0; i--) s = (s << 8n) | BigInt(sig[32 + i]!);
    const s2 = s + L; // same value mod L, non-canonical encoding (< 2^256)
    const mall = Uint8Array.from(sig);
    for (let i = 0; i < 32; i++) mall[32 + i] = Number((s2 >> BigInt(8 * i)) & 0xffn);
    assert.equal(ed25519.verify(mall, msg, pub), false);
    assert.equal(ed25519Verify(pub, msg, mall), false);
  });

  it('malformed input is false, never a throw', () => {
    const sk = ed25519.utils.randomSecretKey();
    const pub = hex(ed25519.getPublicKey(sk));
    const msg = new Uint8Array([1, 2, 3]);
    const sig = hex(ed25519.sign(msg, sk));
    assert.equal(ed25519VerifyHex(pub.toUpperCase(), msg, sig.toUpperCase()), true);
    for (const [k, s] of [
      [pub.slice(2), sig],
      [pub, sig.slice(2)],
      [`${pub.slice(0, 62)}zz`, sig],
      [pub, `${sig}00`],
      ['', ''],
      [null, sig],
      [pub, 42],
    ] as const) {
      assert.equal(ed25519VerifyHex(k as unknown as string, msg, s as unknown as string), false);
    }
    assert.equal(ed25519Verify(new Uint8Array(31), msg, Buffer.from(sig, 'hex')), false);
    assert.equal(ed25519Verify(Buffer.from(pub, 'hex'), msg, new Uint8Array(63)), false);
  });
});
