// Tron addresses: 0x41 || last 20 bytes of keccak256(uncompressed public key without 0x04),
// written base58check (double-SHA-256 checksum) as `T…` (34 characters).

import { sha256 } from '@noble/hashes/sha2.js';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { createBase58check } from '@scure/base';
import { ChainError } from '../../errors.ts';
import { uncompressedPublicKey } from '../keys.ts';
import type { AddressValidation } from '../types.ts';

const b58c = createBase58check(sha256);
export const TRON_PREFIX = 0x41;

/** 21 bytes (0x41 || 20) → `T…`. */
export function tronAddressFromBytes(bytes: Uint8Array): string {
  if (bytes.length !== 21 || bytes[0] !== TRON_PREFIX)
    throw new TypeError('tron: address bytes must be 0x41 + 20');
  return b58c.encode(bytes);
}

export function tronAddressFromPublicKey(publicKey: Uint8Array): string {
  const pub = uncompressedPublicKey(publicKey);
  const h = keccak_256(pub.subarray(1));
  const bytes = new Uint8Array(21);
  bytes[0] = TRON_PREFIX;
  bytes.set(h.subarray(12), 1);
  return tronAddressFromBytes(bytes);
}

/** Accepts `T…` base58check or 41-prefixed hex (42 hex digits); returns the `T…` form. */
export function validateTronAddress(address: string): AddressValidation {
  if (typeof address !== 'string') return { valid: false, reason: 'not a string' };
  let bytes: Uint8Array;
  if (/^(0x)?41[0-9a-fA-F]{40}$/.test(address)) {
    bytes = Uint8Array.from(Buffer.from(address.replace(/^0x/, ''), 'hex'));
  } else {
    if (!/^T[1-9A-HJ-NP-Za-km-z]{33}$/.test(address))
      return { valid: false, reason: 'not a T… base58 address' };
    try {
      bytes = b58c.decode(address);
    } catch {
      return { valid: false, reason: 'base58check checksum mismatch' };
    }
  }
  if (bytes.length !== 21 || bytes[0] !== TRON_PREFIX)
    return { valid: false, reason: 'wrong length or prefix' };
  if (bytes.subarray(1).every((b) => b === 0))
    return { valid: false, reason: 'the zero address burns funds' };
  return { valid: true, address: b58c.encode(bytes) };
}

/** 21 bytes of a valid address (throws CUSTOS_CHAIN_INVALID_ADDRESS). */
export function tronAddressBytes(address: string, what = 'address'): Uint8Array {
  const v = validateTronAddress(address);
  if (!v.valid)
    throw new ChainError('CUSTOS_CHAIN_INVALID_ADDRESS', `${what}: ${v.reason}`, {
      details: { field: what },
    });
  return b58c.decode(v.address!);
}

export function tronAddressHex(address: string): string {
  return Buffer.from(tronAddressBytes(address)).toString('hex');
}
