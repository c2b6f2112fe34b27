// Shared helpers for the DKLs23 tests (not a test file itself).
import assert from 'node:assert/strict';
import { createHash, createPublicKey, verify as osslVerify, randomBytes } from 'node:crypto';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { runLocalProtocol } from '../local-runner.ts';
import type { PartyId, SchemeSignature } from '../threshold.ts';
import { type Dkls23KeyShare, dkls23Ecdsa as S } from './index.ts';

export const sid = (): string => randomBytes(32).toString('hex');

export function dkg(t: number, n: number): Map<PartyId, Dkls23KeyShare> {
  const parties = Array.from({ length: n }, (_, i) => i + 1);
  const s = sid();
  return runLocalProtocol(parties.map((p) => S.dkg({ sessionId: s, partyId: p, parties, threshold: t })));
}

export function presignAndSign(
  shares: Map<PartyId, Dkls23KeyShare>,
  signers: PartyId[],
  message: Uint8Array,
  derivationPath?: string,
): SchemeSignature {
  const s1 = sid();
  const pres = runLocalProtocol(
    signers.map((p) => S.presign!({ sessionId: s1, share: shares.get(p)!, signers })),
  );
  const s2 = sid();
  const sigs = runLocalProtocol(
    signers.map((p) =>
      S.sign({
        sessionId: s2,
        share: shares.get(p)!,
        signers,
        message,
        presignature: pres.get(p)!,
        ...(derivationPath ? { derivationPath } : {}),
      }),
    ),
  );
  const first = sigs.get(signers[0]!)!;
  for (const s of sigs.values()) assert.deepEqual(s.signature, first.signature);
  return first;
}

/** A random message and its SHA-256 digest (what OpenSSL verifies with 'sha256'). */
export function randomMessage(): { message: Buffer; digest: Uint8Array } {
  const message = randomBytes(40);
  return { message, digest: new Uint8Array(createHash('sha256').update(message).digest()) };
}

function spki(pub: Uint8Array) {
  const jwkPoint = secp256k1.Point.fromBytes(pub).toBytes(false);
  return createPublicKey({
    key: {
      kty: 'EC',
      crv: 'secp256k1',
      x: Buffer.from(jwkPoint.subarray(1, 33)).toString('base64url'),
      y: Buffer.from(jwkPoint.subarray(33)).toString('base64url'),
    },
    format: 'jwk',
  });
}

function der(sig: Uint8Array): Buffer {
  return Buffer.from(secp256k1.Signature.fromBytes(sig, 'compact').toBytes('der'));
}

export const ethAddress = (pub: Uint8Array): string =>
  Buffer.from(keccak_256(secp256k1.Point.fromBytes(pub).toBytes(false).subarray(1)).subarray(12)).toString(
    'hex',
  );

/** Acceptance 1: noble, OpenSSL (SPKI/DER, sha256 of the message), and Ethereum address recovery. */
export function assertValid(
  sig: SchemeSignature,
  pub: Uint8Array,
  message: Buffer,
  digest: Uint8Array,
): void {
  assert.deepEqual(sig.signingPublicKey, pub);
  assert.ok(secp256k1.verify(sig.signature, digest, pub, { prehash: false, lowS: true }), 'noble verify');
  assert.ok(S.verify(pub, digest, sig), 'scheme verify');
  assert.ok(osslVerify('sha256', message, spki(pub), der(sig.signature)), 'OpenSSL verify');
  const s = BigInt(`0x${Buffer.from(sig.signature.subarray(32)).toString('hex')}`);
  assert.ok(s <= secp256k1.Point.Fn.ORDER >> 1n, 'low-s');
  assert.ok(sig.recovery === 0 || sig.recovery === 1);
  const rec = secp256k1.Signature.fromBytes(sig.signature, 'compact').addRecoveryBit(sig.recovery!);
  assert.equal(ethAddress(rec.recoverPublicKey(digest).toBytes(true)), ethAddress(pub), 'ethereum recovery');
}
