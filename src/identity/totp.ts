// TOTP, RFC 6238 (HMAC-SHA1 over RFC 4226 HOTP, 30-second steps, 6 digits — what authenticator apps
// implement), enrolment as an otpauth:// URI plus a QR code, and one-time recovery codes.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { base32nopad } from '@scure/base';
import QRCode from 'qrcode';
import { sha256Hex } from './crypto.ts';

export const TOTP_STEP_SECONDS = 30;
export const TOTP_DIGITS = 6;

/** A new 160-bit secret (RFC 4226 §4 recommends 160 bits), base32 without padding. */
export function generateTotpSecret(): string {
  return base32nopad.encode(randomBytes(20));
}

// RFC 4226 §5.3: HOTP = Truncate(HMAC-SHA-1(K, C)) mod 10^Digit
export function hotp(secretBase32: string, counter: bigint, digits = TOTP_DIGITS): string {
  const key = base32nopad.decode(secretBase32.toUpperCase());
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(counter);
  const mac = createHmac('sha1', key).update(msg).digest();
  const offset = mac[mac.length - 1]! & 0x0f;
  const code = (mac.readUInt32BE(offset) & 0x7fffffff) % 10 ** digits;
  return code.toString().padStart(digits, '0');
}

// RFC 6238 §4.2: T = floor((Current Unix time - T0) / X), T0 = 0, X = 30
export function totpCounter(nowMs: number): bigint {
  return BigInt(Math.floor(nowMs / 1000 / TOTP_STEP_SECONDS));
}

export function totp(secretBase32: string, nowMs = Date.now()): string {
  return hotp(secretBase32, totpCounter(nowMs));
}

/**
 * Checks a code against the current step ±1 (clock drift). Returns the matched counter, or null.
 * A counter at or below `lastCounter` is refused: each code works once.
 */
export function verifyTotp(
  secretBase32: string,
  code: string,
  opts: { nowMs?: number; lastCounter?: bigint | null; window?: number } = {},
): bigint | null {
  if (!/^[0-9]{6}$/.test(code)) return null;
  const now = totpCounter(opts.nowMs ?? Date.now());
  const w = BigInt(opts.window ?? 1);
  let found: bigint | null = null;
  for (let c = now - w; c <= now + w; c++) {
    // Compare every candidate (no early exit) in constant time.
    if (timingSafeEqual(Buffer.from(hotp(secretBase32, c)), Buffer.from(code)) && found === null) found = c;
  }
  if (found === null) return null;
  if (opts.lastCounter !== undefined && opts.lastCounter !== null && found <= opts.lastCounter) return null;
  return found;
}

export function otpauthUri(secretBase32: string, account: string, issuer = 'Custos'): string {
  const label = `${encodeURIComponent(issuer)}:${encodeURIComponent(account)}`;
  const q = new URLSearchParams({
    secret: secretBase32,
    issuer,
    algorithm: 'SHA1',
    digits: String(TOTP_DIGITS),
    period: String(TOTP_STEP_SECONDS),
  });
  return `otpauth://totp/${label}?${q.toString()}`;
}

/** PNG QR code of the otpauth URI, as a data: URL. */
export function qrCodeDataUrl(uri: string): Promise<string> {
  return QRCode.toDataURL(uri, { errorCorrectionLevel: 'M', margin: 2 });
}

/** Ten recovery codes `xxxxx-xxxxx` (shown once) and their stored SHA-256 hashes. */
export function generateRecoveryCodes(n = 10): { codes: string[]; hashes: string[] } {
  const codes: string[] = [];
  for (let i = 0; i < n; i++) {
    const s = base32nopad.encode(randomBytes(7)).toLowerCase().slice(0, 10);
    codes.push(`${s.slice(0, 5)}-${s.slice(5)}`);
  }
  return { codes, hashes: codes.map(hashRecoveryCode) };
}

export function hashRecoveryCode(code: string): string {
  return sha256Hex(`custos/recovery-code/v1\u0000${code.trim().toLowerCase()}`);
}
