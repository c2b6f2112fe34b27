// secp256k1 helpers shared by the chain families: public-key normalisation and recovery of the
// signer of a 32-byte digest from a 64-byte r||s signature (our threshold signatures).
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { ChainError } from '../errors.ts';

/** 65-byte uncompressed (0x04||X||Y) form of a 33- or 65-byte secp256k1 public key; validates it. */
export function uncompressedPublicKey(publicKey: Uint8Array): Uint8Array {
  if (!(publicKey instanceof Uint8Array) || (publicKey.length !== 33 && publicKey.length !== 65)) {
    throw new ChainError('CUSTOS_CHAIN_INVALID_ADDRESS', 'public key must be 33 or 65 bytes of secp256k1');
  }
  try {
    const p = secp256k1.Point.fromBytes(publicKey);
    p.assertValidity();
    return p.toBytes(false);
  } catch (cause) {
    throw new ChainError('CUSTOS_CHAIN_INVALID_ADDRESS', 'public key is not a valid secp256k1 point', {
      cause,
    });
  }
}

/** Recovers the 65-byte uncompressed public key; null when the signature is malformed. */
export function recoverPublicKey(digest: Uint8Array, rs: Uint8Array, recovery: number): Uint8Array | null {
  if (digest.length !== 32 || rs.length !== 64 || (recovery !== 0 && recovery !== 1)) return null;
  try {
    const sig = secp256k1.Signature.fromBytes(rs, 'compact').addRecoveryBit(recovery);
    return sig.recoverPublicKey(digest).toBytes(false);
  } catch {
    return null;
  }
}

/**
 * Finds the recovery id under which `rs` recovers to a key whose address is `expected`.
 * Returns null when neither does (wrong key, wrong digest, or a high-s signature).
 */
export function findRecovery(
  digest: Uint8Array,
  rs: Uint8Array,
  recovery: number | undefined,
  addressOf: (uncompressed: Uint8Array) => string,
  expected: string,
): number | null {
  if (rs.length !== 64) return null;
  // Chains reject high-s (EIP-2; Tron nodes too); our threshold scheme always produces low-s.
  const s = BigInt(`0x${Buffer.from(rs.subarray(32)).toString('hex')}`);
  if (s === 0n || s > secp256k1.Point.Fn.ORDER >> 1n) return null;
  const candidates = recovery === undefined ? [0, 1] : [recovery];
  for (const v of candidates) {
    const pk = recoverPublicKey(digest, rs, v);
    if (pk && addressOf(pk) === expected) return v;
  }
  return null;
}
