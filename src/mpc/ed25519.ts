// Ed25519 sign/verify through OpenSSL (node:crypto) for the hot path of the node transport: envelopes
// and requests are verified on every message, and OpenSSL is an order of magnitude faster than a
// pure-JS verifier. Keys are raw 32-byte values wrapped into DER here.
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
