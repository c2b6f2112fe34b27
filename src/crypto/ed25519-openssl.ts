// Ed25519 sign/verify through OpenSSL (node:crypto). Every verification of a plain RFC 8032 signature
// goes here: node transport envelopes, owner statements and approvals (authoriser and API), the FROST
// suite's final check, the test chain, audit checkpoints. OpenSSL verifies in ~0.07 ms where
// @noble/curves takes ~1.1 ms (measured on this machine, .test.ts beside this file checks they agree).
// OpenSSL's check is the strict one: S < L, R compared by its encoding, the cofactorless equation;
// an honestly made signature passes it and noble's alike. Keys are raw 32-byte values wrapped into DER
// here.
import { createPrivateKey, createPublicKey, type KeyObject, sign, verify } from 'node:crypto';

const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const publicCache = new Map<string, KeyObject>();

export function ed25519PublicKeyObject(publicKey: Uint8Array): KeyObject {
  const k = Buffer.from(publicKey).toString('hex');
  let o = publicCache.get(k);
  if (!o) {
    if (publicKey.length !== 32) throw new Error('ed25519: public key must be 32 bytes');
    o = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKey]), format: 'der', type: 'spki' });
    if (publicCache.size > 10_000) publicCache.clear();
    publicCache.set(k, o);
  }
  return o;
}

export function ed25519PrivateKeyObject(secretKey: Uint8Array): KeyObject {
  if (secretKey.length !== 32) throw new Error('ed25519: secret key must be 32 bytes');
  const der = Buffer.concat([PKCS8_PREFIX, secretKey]);
  const o = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  der.fill(0);
  return o;
}

export function ed25519Sign(key: KeyObject, message: Uint8Array): Uint8Array {
  return new Uint8Array(sign(null, message, key));
}

export function ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== 64) return false;
  try {
    return verify(null, message, ed25519PublicKeyObject(publicKey), signature);
  } catch {
    return false;
  }
}

const HEX64 = /^[0-9a-fA-F]{64}$/;
const HEX128 = /^[0-9a-fA-F]{128}$/;

/** ed25519Verify for hex-encoded key and signature (API and evidence fields). Never throws. */
export function ed25519VerifyHex(publicKeyHex: string, message: Uint8Array, signatureHex: string): boolean {
  if (typeof publicKeyHex !== 'string' || typeof signatureHex !== 'string') return false;
  if (!HEX64.test(publicKeyHex) || !HEX128.test(signatureHex)) return false;
  return ed25519Verify(Buffer.from(publicKeyHex, 'hex'), message, Buffer.from(signatureHex, 'hex'));
}
