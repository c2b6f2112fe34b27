// RFC 6238 (TOTP) test vectors, one test per vector, plus the verification rules we add on top:
// ±1 step window, single use of each step, and the otpauth URI / QR code for enrolment.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { base32nopad } from '@scure/base';
import {
  generateRecoveryCodes,
  generateTotpSecret,
  hashRecoveryCode,
  hotp,
  otpauthUri,
  qrCodeDataUrl,
  totp,
  totpCounter,
  verifyTotp,
} from '../src/identity/totp.ts';

const file = JSON.parse(
  readFileSync(new URL('./vectors/rfc6238/totp-sha1.json', import.meta.url), 'utf8'),
) as {
  secretAscii: string;
  digits: number;
  vectors: { time: number; counter: string; totp: string }[];
};
const secret = base32nopad.encode(new TextEncoder().encode(file.secretAscii));

for (const v of file.vectors) {
  test(`RFC 6238 Appendix B: T=${v.time} → ${v.totp}`, () => {
    const counter = totpCounter(v.time * 1000);
    assert.equal(counter, BigInt(`0x${v.counter}`));
    assert.equal(hotp(secret, counter, file.digits), v.totp);
  });
}

test('verifyTotp: current step and ±1 accepted, further off refused, each step usable once', () => {
  const s = generateTotpSecret();
  const now = 1_700_000_000_000;
  const code = totp(s, now);
  const c = verifyTotp(s, code, { nowMs: now });
  assert.equal(c, totpCounter(now));
  assert.equal(verifyTotp(s, totp(s, now - 30_000), { nowMs: now }), totpCounter(now) - 1n);
  assert.equal(verifyTotp(s, totp(s, now + 30_000), { nowMs: now }), totpCounter(now) + 1n);
  assert.equal(verifyTotp(s, totp(s, now - 90_000), { nowMs: now }), null);
  assert.equal(verifyTotp(s, code, { nowMs: now, lastCounter: c }), null, 'replay refused');
  assert.equal(verifyTotp(s, 'abcdef', { nowMs: now }), null);
  assert.equal(verifyTotp(s, '12345', { nowMs: now }), null);
});

test('enrolment: otpauth URI and a PNG QR code; recovery codes hash stably', async () => {
  const s = generateTotpSecret();
  assert.equal(base32nopad.decode(s).length, 20);
  const uri = otpauthUri(s, 'ops@example.com');
  const u = new URL(uri);
  assert.equal(u.protocol, 'otpauth:');
  assert.equal(u.searchParams.get('secret'), s);
  assert.equal(u.searchParams.get('period'), '30');
  const qr = await qrCodeDataUrl(uri);
  assert.match(qr, /^data:image\/png;base64,/);
  const { codes, hashes } = generateRecoveryCodes();
  assert.equal(codes.length, 10);
  assert.equal(new Set(codes).size, 10);
  assert.equal(hashRecoveryCode(` ${codes[0]!.toUpperCase()} `), hashes[0]);
});
