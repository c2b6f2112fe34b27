// Secret hygiene and single-use nonces, the Ed25519 HD test vectors published in docs/crypto/frost.md,
// and fast-check properties (storage round trip, any t of n).
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { inspect } from 'node:util';
import { ed25519 } from '@noble/curves/ed25519.js';
import fc from 'fast-check';
import { runLocalProtocol } from '../local-runner.ts';
import { ThresholdAbort } from '../threshold.ts';
import { deriveEd25519 } from './ed25519-hd.ts';
import { frostBip340, frostEd25519 } from './index.ts';
import { nonceBuffersForTest, shareSecret } from './share.ts';
import { independentVerify, newSessionId, range, runDkg, runSign } from './test-support.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

for (const scheme of [frostEd25519, frostBip340]) {
  const shares = runDkg(scheme, 2, range(3));

  test(`${scheme.name}: secrets never reach toString, JSON.stringify or util.inspect (canary)`, () => {
    const share = shares.get(1)!;
    const secretHex = hex(scheme.suite.Fn.toBytes(shareSecret(share)));
    const nonce = scheme.commitNonce(share);
    const nonceHex = hex(nonceBuffersForTest(nonce)!.hiding);
    const sessionId = newSessionId();
    const party = scheme.sign({ sessionId, share, signers: [1, 2], message: Uint8Array.of(1), nonce });
    party.start();
    const dkgParty = scheme.dkg({ sessionId, partyId: 1, parties: range(3), threshold: 2 });
    dkgParty.start();
    for (const obj of [share, nonce, party, dkgParty, { nested: [share, nonce] }]) {
      const renders = [
        String(obj),
        JSON.stringify(obj),
        inspect(obj, { showHidden: true, depth: Number.POSITIVE_INFINITY, getters: true }),
      ];
      for (const r of renders) {
        assert.ok(!r.includes(secretHex), `share secret leaked: ${r.slice(0, 80)}`);
        assert.ok(!r.includes(nonceHex), `nonce leaked: ${r.slice(0, 80)}`);
      }
    }
    party.destroy();
    dkgParty.destroy();
  });

  test(`${scheme.name}: exportShareForStorage / importShareFromStorage round trip, tampering refused`, () => {
    const share = shares.get(2)!;
    const bytes = scheme.exportShareForStorage(share);
    const back = scheme.importShareFromStorage(bytes);
    assert.deepEqual(back.info, share.info);
    assert.deepEqual(back.commitments, share.commitments);
    assert.equal(shareSecret(back), shareSecret(share));
    const msg = Uint8Array.of(4, 2);
    const sig = runSign(scheme, new Map([...shares, [2, back]]), [2, 3], msg);
    assert.ok(independentVerify(scheme, sig, msg));
    for (let i = 0; i < bytes.length; i++) {
      const bad = bytes.slice();
      bad[i]! ^= 0x01;
      assert.throws(() => scheme.importShareFromStorage(bad), /frost\/share: import/, `byte ${i}`);
    }
    assert.throws(() => scheme.importShareFromStorage(bytes.slice(0, -1)), /import/);
    const other = scheme === frostEd25519 ? frostBip340 : frostEd25519;
    assert.throws(() => other.importShareFromStorage(bytes), /another scheme/);
  });

  test(`${scheme.name}: nonces are single-use and zeroed after use`, () => {
    const share = shares.get(1)!;
    const msg = Uint8Array.of(5);
    const nonce = scheme.commitNonce(share);
    const buffers = nonceBuffersForTest(nonce)!;
    assert.ok(buffers.hiding.some((b) => b !== 0));
    const sig = runSign(scheme, shares, [1, 3], msg, { perParty: (id) => (id === 1 ? { nonce } : {}) });
    assert.ok(independentVerify(scheme, sig, msg));
    assert.equal(nonce.consumed, true);
    assert.ok(buffers.hiding.every((b) => b === 0) && buffers.binding.every((b) => b === 0), 'zeroed');
    // Signing again with the consumed nonce is refused before anything is sent.
    const again = scheme.sign({ sessionId: newSessionId(), share, signers: [1, 3], message: msg, nonce });
    assert.throws(
      () => again.start(),
      (e: unknown) => e instanceof ThresholdAbort && e.reason === 'consumed',
    );
    // A nonce claimed by a session that then aborted is burnt too (its commitment was published).
    const n2 = scheme.commitNonce(share);
    const sid = newSessionId();
    const p1 = scheme.sign({ sessionId: sid, share, signers: [1, 3], message: msg, nonce: n2 });
    const p3 = scheme.sign({ sessionId: sid, share: shares.get(3)!, signers: [1, 3], message: msg });
    assert.throws(
      () => runLocalProtocol([p1, p3], { intercept: (m) => (m.from === 3 ? null : m) }),
      ThresholdAbort,
    );
    assert.equal(n2.consumed, true);
    assert.throws(
      () =>
        scheme.sign({ sessionId: newSessionId(), share, signers: [1, 3], message: msg, nonce: n2 }).start(),
      (e: unknown) => e instanceof ThresholdAbort && e.reason === 'consumed',
    );
    // A nonce is bound to its party and key.
    assert.throws(
      () =>
        scheme.sign({
          sessionId: newSessionId(),
          share: shares.get(3)!,
          signers: [1, 3],
          message: msg,
          nonce: scheme.commitNonce(share),
        }),
      /another party/,
    );
    // Injected randomness needs the explicit flag.
    assert.throws(
      () =>
        scheme.commitNonce(share, {
          allowInjectedRandomness: false as true,
          randomness: [randomBytes(32), randomBytes(32)],
        }),
      /not allowed/,
    );
  });

  test(`${scheme.name}: property: any t of n sign; storage round trip`, () => {
    const big = runDkg(scheme, 3, range(5));
    fc.assert(
      fc.property(
        fc.shuffledSubarray(range(5), { minLength: 3, maxLength: 3 }),
        fc.uint8Array({ minLength: 0, maxLength: 64 }),
        fc.option(fc.tuple(fc.nat(1000), fc.nat(1000)), { nil: undefined }),
        (signers, message, path) => {
          const sorted = [...signers].sort((a, b) => a - b);
          const derivationPath = path ? `m/${path[0]}/${path[1]}` : undefined;
          const sig = runSign(scheme, big, sorted, message, { params: { derivationPath } });
          assert.ok(independentVerify(scheme, sig, message));
          if (derivationPath)
            assert.deepEqual(sig.signingPublicKey, scheme.derivePublicKey(big.get(1)!.info, derivationPath));
          const s = big.get(sorted[0]!)!;
          assert.equal(
            shareSecret(scheme.importShareFromStorage(scheme.exportShareForStorage(s))),
            shareSecret(s),
          );
        },
      ),
      { numRuns: 12 },
    );
  });
}

// ---- Ed25519 HD vectors (docs/crypto/frost.md) -----------------------------------------------------

interface HdVectors {
  rootSecretScalar: string;
  rootPublicKey: string;
  rootChainCode: string;
  children: {
    path: string;
    tweak: string;
    childSecretScalar: string;
    publicKey: string;
    chainCode: string;
  }[];
}
const vectors: HdVectors = JSON.parse(
  readFileSync(new URL('../../../test/vectors/frost/custos-ed25519-hd.json', import.meta.url), 'utf8'),
);
const Fn = ed25519.Point.Fn;
const L = Fn.ORDER;
const le = (b: Uint8Array) => BigInt(`0x${Buffer.from(b).reverse().toString('hex') || '0'}`);

test('Ed25519 HD: vectors in the docs are the vectors in test/vectors', () => {
  const doc = readFileSync(new URL('../../../docs/crypto/frost.md', import.meta.url), 'utf8');
  const block = /```json ed25519-hd-vectors\n([\s\S]*?)```/.exec(doc);
  assert.ok(block, 'docs/crypto/frost.md has the vector block');
  assert.deepEqual(JSON.parse(block[1]!), vectors);
});

for (const v of vectors.children) {
  test(`Ed25519 HD vector ${v.path}`, () => {
    const d = deriveEd25519(
      Buffer.from(vectors.rootPublicKey, 'hex'),
      Buffer.from(vectors.rootChainCode, 'hex'),
      v.path,
    );
    assert.equal(hex(d.publicKey), v.publicKey);
    assert.equal(hex(d.chainCode), v.chainCode);
    assert.equal(hex(Fn.toBytes(d.tweak)), v.tweak);
    // Independent re-derivation from the documented formula (node:crypto HMAC, noble points).
    let A = ed25519.Point.fromHex(vectors.rootPublicKey);
    let c = Buffer.from(vectors.rootChainCode, 'hex');
    let tweak = 0n;
    for (const part of v.path.split('/').slice(1)) {
      const data = Buffer.alloc(36);
      Buffer.from(A.toBytes()).copy(data);
      data.writeUInt32BE(Number(part), 32);
      const I = createHmac('sha512', c).update(data).digest();
      const t = le(I.subarray(0, 32)) % L;
      A = A.add(ed25519.Point.BASE.multiply(t));
      tweak = (tweak + t) % L;
      c = I.subarray(32);
    }
    assert.equal(hex(A.toBytes()), v.publicKey);
    assert.equal(hex(c), v.chainCode);
    // child secret = root secret + tweak, and it signs for the child key (OpenSSL-compatible RFC 8032).
    const child = Fn.add(le(Buffer.from(vectors.rootSecretScalar, 'hex')), tweak);
    assert.equal(hex(Fn.toBytes(child)), v.childSecretScalar);
    assert.equal(hex(ed25519.Point.BASE.multiply(child).toBytes()), v.publicKey);
  });
}
