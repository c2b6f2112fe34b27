// Small primitives shared by identity code: random prefixed tokens, SHA-256 digests of tokens,
// constant-time comparison, and AES-256-GCM sealing of secrets at rest (TOTP secrets, private JWT
// keys) under the identity key-encryption key, bound to what they belong to (AAD).
import { createCipheriv, createDecipheriv, createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { CustosError } from '../errors.ts';

export function randomToken(prefix: string, bytes = 32): string {
  return `${prefix}${randomBytes(bytes).toString('base64url')}`;
}

export function sha256Hex(value: string): string {
  return createHash('sha256').update(value).digest('hex');
}

/** Constant-time equality of two hex digests (false for different lengths, without early exit on content). */
export function equalHex(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  if (x.length !== y.length || x.length === 0) return false;
  return timingSafeEqual(x, y);
}

export function seal(kek: Uint8Array, plaintext: string, aad: string): string {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', kek, iv);
  c.setAAD(Buffer.from(aad));
  const ct = Buffer.concat([c.update(plaintext, 'utf8'), c.final()]);
  return `v1.${Buffer.concat([iv, c.getAuthTag(), ct]).toString('base64url')}`;
}

export function unseal(kek: Uint8Array, sealed: string, aad: string): string {
  try {
    if (!sealed.startsWith('v1.')) throw new Error('unknown format');
    const raw = Buffer.from(sealed.slice(3), 'base64url');
    const d = createDecipheriv('aes-256-gcm', kek, raw.subarray(0, 12));
    d.setAAD(Buffer.from(aad));
    d.setAuthTag(raw.subarray(12, 28));
    return Buffer.concat([d.update(raw.subarray(28)), d.final()]).toString('utf8');
  } catch (e) {
    // Wrong identity key file, or a tampered row.
    throw new CustosError('CUSTOS_INTERNAL', 'cannot decrypt a stored secret (wrong identity key?)', {
      cause: e,
    });
  }
}
