// `custos mpc demo` keeps its output contract, and what it prints verifies with independent code.
import assert from 'node:assert/strict';
import { createHash, createPublicKey, randomBytes, verify } from 'node:crypto';
import { describe, test } from 'node:test';
import { ed25519 } from '@noble/curves/ed25519.js';
import { schnorr, secp256k1 } from '@noble/curves/secp256k1.js';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { HDKey } from '@scure/bip32';
import { runCli } from './helpers/cli.ts';

const hex = (h: string) => Uint8Array.from(Buffer.from(h, 'hex'));

function ethAddress(compressed: Uint8Array): string {
  const uncompressed = secp256k1.Point.fromBytes(compressed).toBytes(false);
  return Buffer.from(keccak_256(uncompressed.subarray(1)).subarray(12)).toString('hex');
}

describe('custos mpc demo', () => {
  test('ecdsa-secp256k1 2-of-3, signers 1,3, derived path: noble, OpenSSL, ecrecover and bip32 agree', () => {
    const message = randomBytes(100);
    const d = createHash('sha256').update(message).digest();
    const r = runCli([
      'mpc',
      'demo',
      '--scheme',
      'ecdsa-secp256k1',
      '--threshold',
      '2',
      '--parties',
      '3',
      '--digest',
      d.toString('hex'),
      '--derive',
      'm/0/7',
      '--signers',
      '1,3',
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const out = JSON.parse(r.stdout);
    assert.deepEqual(Object.keys(out).sort(), [
      'derivationPath',
      'parties',
      'publicKey',
      'scheme',
      'signature',
      'signers',
      'signingPublicKey',
      'threshold',
      'timingsMs',
      'xpub',
    ]);
    assert.equal(out.scheme, 'ecdsa-secp256k1');
    assert.deepEqual(out.signers, [1, 3]);
    assert.equal(out.derivationPath, 'm/0/7');
    assert.match(out.publicKey, /^0[23][0-9a-f]{64}$/);
    assert.deepEqual(Object.keys(out.timingsMs).sort(), ['dkg', 'presign', 'sign']);
    // the signing key is BIP32 m/0/7 of the xpub
    const child = HDKey.fromExtendedKey(out.xpub).derive('m/0/7');
    assert.equal(Buffer.from(child.publicKey!).toString('hex'), out.signingPublicKey);
    const sig64 = hex(out.signature.r + out.signature.s);
    const pub = hex(out.signingPublicKey);
    assert.ok(secp256k1.verify(sig64, d, pub, { prehash: false, lowS: true }));
    // OpenSSL: verify sha256(message) with the key as SPKI/DER
    const spki = createPublicKey({ key: spkiOfSecp256k1(pub), format: 'der', type: 'spki' });
    const der = secp256k1.Signature.fromBytes(sig64, 'compact').toBytes('der');
    assert.ok(verify('sha256', message, spki, der));
    // Ethereum: the address recovered from (digest, r, s, v) is the signing key's address
    const rec = secp256k1.Signature.fromBytes(sig64, 'compact').addRecoveryBit(out.signature.recovery);
    assert.equal(ethAddress(rec.recoverPublicKey(d).toBytes(true)), ethAddress(pub));
  });

  test('eddsa-ed25519 3-of-5: the signature verifies with OpenSSL', () => {
    const msg = randomBytes(48);
    const r = runCli([
      'mpc',
      'demo',
      '--scheme',
      'eddsa-ed25519',
      '--threshold',
      '3',
      '--parties',
      '5',
      '--message',
      msg.toString('hex'),
      '--signers',
      '2,4,5',
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const out = JSON.parse(r.stdout);
    assert.match(out.signature, /^[0-9a-f]{128}$/);
    assert.equal(out.publicKey, out.signingPublicKey);
    const key = createPublicKey({
      key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(out.publicKey, 'hex').toString('base64url') },
      format: 'jwk',
    });
    assert.ok(verify(null, msg, key, hex(out.signature)));
    assert.ok(ed25519.verify(hex(out.signature), msg, hex(out.publicKey)));
  });

  test('schnorr-bip340 2-of-3 under m/5/9: verifies with noble schnorr under the derived x-only key', () => {
    const msg = randomBytes(32);
    const r = runCli([
      'mpc',
      'demo',
      '--scheme',
      'schnorr-bip340',
      '--threshold',
      '2',
      '--parties',
      '3',
      '--message',
      msg.toString('hex'),
      '--derive',
      'm/5/9',
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const out = JSON.parse(r.stdout);
    assert.match(out.publicKey, /^[0-9a-f]{64}$/);
    assert.notEqual(out.signingPublicKey, out.publicKey);
    assert.ok(schnorr.verify(hex(out.signature), msg, hex(out.signingPublicKey)));
  });

  test('bad input exits 2 with a JSON error and a stable code', () => {
    const cases = [
      ['--scheme', 'ecdsa-secp256k1', '--threshold', '2', '--parties', '3', '--digest', 'abcd'],
      ['--scheme', 'ecdsa-secp256k1', '--threshold', '4', '--parties', '3', '--digest', 'ab'.repeat(32)],
      [
        '--scheme',
        'ecdsa-secp256k1',
        '--threshold',
        '2',
        '--parties',
        '3',
        '--digest',
        'ab'.repeat(32),
        '--signers',
        '1,1',
      ],
      [
        '--scheme',
        'ecdsa-secp256k1',
        '--threshold',
        '2',
        '--parties',
        '3',
        '--digest',
        'ab'.repeat(32),
        '--derive',
        "m/0'",
      ],
      ['--scheme', 'eddsa-ed25519', '--threshold', '2', '--parties', '3', '--message', 'xyz'],
    ];
    for (const c of cases) {
      const r = runCli(['mpc', 'demo', ...c, '--json']);
      assert.equal(r.code, 2, c.join(' '));
      assert.equal(JSON.parse(r.stdout).error.code, 'CUSTOS_MPC_BAD_REQUEST', c.join(' '));
    }
  });
});

/** SubjectPublicKeyInfo DER for a compressed secp256k1 key (id-ecPublicKey, secp256k1). */
function spkiOfSecp256k1(compressed: Uint8Array): Buffer {
  const prefix = Buffer.from('3036301006072a8648ce3d020106052b8104000a032200', 'hex');
  return Buffer.concat([prefix, compressed]);
}
