// EVM addresses: the last 20 bytes of keccak256 of the uncompressed public key (without 0x04),
// written with the EIP-55 mixed-case checksum.
import { keccak_256 } from '@noble/hashes/sha3.js';
import { getAddress, isAddress } from 'viem';
import { ChainError } from '../../errors.ts';
import { uncompressedPublicKey } from '../keys.ts';
import type { AddressValidation } from '../types.ts';

/** EIP-55 address of a secp256k1 public key (33 or 65 bytes). */
export function evmAddressFromPublicKey(publicKey: Uint8Array): `0x${string}` {
  const pub = uncompressedPublicKey(publicKey);
  const hash = keccak_256(pub.subarray(1));
  return getAddress(`0x${Buffer.from(hash.subarray(12)).toString('hex')}`);
}

/**
 * Mixed-case input must carry a correct EIP-55 checksum; all-lowercase or all-uppercase input has
 * no checksum to check and is accepted unless `requireChecksum` is set.
 */
export function validateEvmAddress(
  address: string,
  opts: { requireChecksum?: boolean } = {},
): AddressValidation {
  if (typeof address !== 'string' || !/^0x[0-9a-fA-F]{40}$/.test(address)) {
    return { valid: false, reason: 'not 0x followed by 40 hex digits' };
  }
  const body = address.slice(2);
  const mixed = body !== body.toLowerCase() && body !== body.toUpperCase();
  if (mixed || opts.requireChecksum) {
    if (!isAddress(address, { strict: true }) || getAddress(address) !== address) {
      return { valid: false, reason: 'EIP-55 checksum mismatch' };
    }
  }
  const canonical = getAddress(address.toLowerCase());
  if (canonical === '0x0000000000000000000000000000000000000000') {
    return { valid: false, reason: 'the zero address burns funds' };
  }
  return { valid: true, address: canonical };
}

export function requireEvmAddress(address: string, what: string): `0x${string}` {
  const v = validateEvmAddress(address);
  if (!v.valid) {
    throw new ChainError('CUSTOS_CHAIN_INVALID_ADDRESS', `${what}: ${v.reason}`, {
      details: { field: what },
    });
  }
  return v.address as `0x${string}`;
}
