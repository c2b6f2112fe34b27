import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HDKey } from '@scure/bip32';
import fc from 'fast-check';
import { xpubOf } from '../hd.ts';
import { runLocalProtocol } from '../local-runner.ts';
import { ThresholdAbort } from '../threshold.ts';
import { assertValid, dkg, presignAndSign, randomMessage, sid } from './helpers.test-util.ts';
import { dkls23Ecdsa as S } from './index.ts';

const k23 = dkg(2, 3);
const k35 = dkg(3, 5);

test('2-of-3: every signer pair signs; noble, OpenSSL and Ethereum recovery agree', () => {
  const pub = k23.get(1)!.info.publicKey;
  for (const signers of [
    [1, 2],
    [1, 3],
    [2, 3],
  ]) {
    const { message, digest } = randomMessage();
    assertValid(presignAndSign(k23, signers, digest), pub, message, digest);
  }
});

test('3-of-5: every 3-subset signs', () => {
  const pub = k35.get(1)!.info.publicKey;
  const ids = [1, 2, 3, 4, 5];
  for (let a = 0; a < 5; a++)
    for (let b = a + 1; b < 5; b++)
      for (let c = b + 1; c < 5; c++) {
        const { message, digest } = randomMessage();
        assertValid(presignAndSign(k35, [ids[a]!, ids[b]!, ids[c]!], digest), pub, message, digest);
      }
});

test('sign without a presignature runs presign + online internally', () => {
  const { message, digest } = randomMessage();
  const s = sid();
  const out = runLocalProtocol(
    [2, 3].map((p) => S.sign({ sessionId: s, share: k23.get(p)!, signers: [2, 3], message: digest })),
  );
  assertValid(out.get(2)!, k23.get(1)!.info.publicKey, message, digest);
});

test('HD: xpub matches @scure/bip32 and derived-path signatures verify under the child key', () => {
  const info = k23.get(1)!.info;
  const xpub = xpubOf(info.publicKey, info.chainCode);
  for (const path of ['m/0', 'm/0/7', 'm/44/60/0/0/5']) {
    const child = S.derivePublicKey(info, path);
    assert.deepEqual(child, HDKey.fromExtendedKey(xpub).derive(path).publicKey);
    const { message, digest } = randomMessage();
    assertValid(presignAndSign(k23, [1, 3], digest, path), child, message, digest);
  }
});

test('presignatures are single-use; a second use throws ThresholdAbort(consumed)', () => {
  const s1 = sid();
  const pres = runLocalProtocol(
    [1, 2].map((p) => S.presign!({ sessionId: s1, share: k23.get(p)!, signers: [1, 2] })),
  );
  const { digest } = randomMessage();
  const s2 = sid();
  runLocalProtocol(
    [1, 2].map((p) =>
      S.sign({
        sessionId: s2,
        share: k23.get(p)!,
        signers: [1, 2],
        message: digest,
        presignature: pres.get(p)!,
      }),
    ),
  );
  assert.ok(pres.get(1)!.consumed);
  const again = S.sign({
    sessionId: sid(),
    share: k23.get(1)!,
    signers: [1, 2],
    message: digest,
    presignature: pres.get(1)!,
  });
  assert.throws(
    () => again.start(),
    (e) => e instanceof ThresholdAbort && e.reason === 'consumed',
  );
});

test('presignature storage round trip moves ownership (the exported object is consumed)', () => {
  const s1 = sid();
  const pres = runLocalProtocol(
    [2, 3].map((p) => S.presign!({ sessionId: s1, share: k23.get(p)!, signers: [2, 3] })),
  );
  const stored = new Map([...pres].map(([p, x]) => [p, S.exportPresignatureForStorage!(x)]));
  for (const p of pres.values()) assert.ok(p.consumed);
  const { message, digest } = randomMessage();
  const s2 = sid();
  const sigs = runLocalProtocol(
    [2, 3].map((p) =>
      S.sign({
        sessionId: s2,
        share: k23.get(p)!,
        signers: [2, 3],
        message: digest,
        presignature: S.importPresignatureFromStorage!(stored.get(p)!),
      }),
    ),
  );
  assertValid(sigs.get(3)!, k23.get(1)!.info.publicKey, message, digest);
});

test('only 32-byte digests are accepted', () => {
  for (const bad of [new Uint8Array(31), new Uint8Array(33), new Uint8Array(0)]) {
    assert.throws(
      () => S.sign({ sessionId: sid(), share: k23.get(1)!, signers: [1, 2], message: bad }),
      /32-byte digest/,
    );
  }
});

test('t-1 parties cannot sign (refused up front; a short signer set never reaches the protocol)', () => {
  const { digest } = randomMessage();
  assert.throws(
    () => S.sign({ sessionId: sid(), share: k35.get(1)!, signers: [1, 2], message: digest }),
    /exactly 3 signers/,
  );
  assert.throws(
    () => S.presign!({ sessionId: sid(), share: k35.get(1)!, signers: [1, 2] }),
    /exactly 3 signers/,
  );
  // Two parties pretending the third's absence: running with a fabricated 3-set stalls on missing messages.
  const s = sid();
  const parties = [1, 2].map((p) =>
    S.sign({ sessionId: s, share: k35.get(p)!, signers: [1, 2, 3], message: digest }),
  );
  assert.throws(
    () => runLocalProtocol(parties),
    (e) => e instanceof ThresholdAbort && e.reason === 'missing-message' && e.culprit === 3,
  );
});

test('share storage round trip signs, and no secret appears in JSON / inspect / toString', async () => {
  const { inspect } = await import('node:util');
  const restored = new Map(
    [...k23].map(([p, s]) => [p, S.importShareFromStorage(S.exportShareForStorage(s))]),
  );
  const { message, digest } = randomMessage();
  assertValid(presignAndSign(restored, [1, 2], digest), k23.get(1)!.info.publicKey, message, digest);
  const share = k23.get(1)!;
  const bytes = S.exportShareForStorage(share);
  const secretHex = Buffer.from(
    bytes.subarray(bytes.length - (3 * 128 * 32 + 16) * 2 - 32, bytes.length - (3 * 128 * 32 + 16) * 2),
  ).toString('hex');
  const s1 = sid();
  const pres = runLocalProtocol(
    [1, 2].map((p) => S.presign!({ sessionId: s1, share: k23.get(p)!, signers: [1, 2] })),
  );
  const partySid = sid();
  const party = S.sign({ sessionId: partySid, share, signers: [1, 2], message: digest });
  for (const obj of [share, pres.get(1)!, party]) {
    for (const text of [JSON.stringify(obj), inspect(obj, { depth: 10, showHidden: true }), String(obj)]) {
      assert.ok(!text.includes(secretHex), 'secret share leaked');
      const publicHex = [Buffer.from(share.info.publicKey).toString('hex'), pres.get(1)!.id, partySid];
      const stripped = publicHex.reduce((t, h) => t.split(h).join(''), text);
      assert.ok(!/[0-9a-f]{64}/.test(stripped), `hex blob in ${stripped.slice(0, 80)}`);
    }
  }
});

test('property: random 3-of-5 signer subsets and random paths verify', () => {
  const pub = k35.get(1)!.info;
  fc.assert(
    fc.property(
      fc.shuffledSubarray([1, 2, 3, 4, 5], { minLength: 3, maxLength: 3 }),
      fc.array(fc.integer({ min: 0, max: 2 ** 31 - 1 }), { minLength: 0, maxLength: 3 }),
      (subset, idx) => {
        const signers = [...subset].sort((a, b) => a - b);
        const path = ['m', ...idx].join('/');
        const { message, digest } = randomMessage();
        assertValid(
          presignAndSign(k35, signers, digest, path),
          S.derivePublicKey(pub, path),
          message,
          digest,
        );
      },
    ),
    { numRuns: 8 },
  );
});
