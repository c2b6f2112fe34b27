// FROST end to end through the local runner: DKG, signing for 2-of-3, 3-of-5, 7-of-10 and every subset
// of a 3-of-5, derived paths, refresh and reshare; every signature checked by independent verifiers
// (OpenSSL for Ed25519, @noble/curves schnorr.verify for BIP340).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { schnorr } from '@noble/curves/secp256k1.js';
import { HDKey } from '@scure/bip32';
import { runLocalProtocol } from '../local-runner.ts';
import { type PartyId, ThresholdAbort } from '../threshold.ts';
import { frostBip340, frostEd25519 } from './index.ts';
import type { FrostScheme } from './scheme.ts';
import type { FrostKeyShare } from './share.ts';
import {
  independentVerify,
  newSessionId,
  range,
  runDkg,
  runRefresh,
  runReshare,
  runSign,
} from './test-support.ts';

const SCHEMES: FrostScheme[] = [frostEd25519, frostBip340];

function pick(xs: number[], k: number): number[] {
  const copy = [...xs];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = randomBytes(1)[0]! % (i + 1);
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy.slice(0, k).sort((a, b) => a - b);
}

function subsets(xs: number[], k: number): number[][] {
  if (k === 0) return [[]];
  if (xs.length < k) return [];
  const [h, ...rest] = xs;
  return [...subsets(rest, k - 1).map((s) => [h!, ...s]), ...subsets(rest, k)];
}

const keys = new Map<string, Map<PartyId, FrostKeyShare>>();
function key(scheme: FrostScheme, t: number, n: number): Map<PartyId, FrostKeyShare> {
  const k = `${scheme.name}/${t}/${n}`;
  if (!keys.has(k)) keys.set(k, runDkg(scheme, t, range(n)));
  return keys.get(k)!;
}

for (const scheme of SCHEMES) {
  for (const [t, n] of [
    [2, 3],
    [3, 5],
    [7, 10],
  ] as const) {
    test(`${scheme.name}: ${t}-of-${n} DKG, sign, derived path; independent verifiers accept`, () => {
      const shares = key(scheme, t, n);
      assert.equal(shares.size, n);
      const infos = [...shares.values()].map((s) => s.info);
      for (const i of infos) {
        assert.deepEqual(i, infos[0]);
        assert.equal(i.publicKey.length, 32);
        assert.equal(i.threshold, t);
      }
      const msg = randomBytes(1 + (randomBytes(1)[0]! % 100));
      const signers = pick(range(n), t);
      const sig = runSign(scheme, shares, signers, msg);
      assert.deepEqual(sig.signingPublicKey, infos[0]!.publicKey);
      assert.ok(independentVerify(scheme, sig, msg), 'root signature');
      assert.ok(scheme.verify(sig.signingPublicKey, msg, sig));
      const path = 'm/0/7';
      const dsig = runSign(scheme, shares, pick(range(n), t), msg, { params: { derivationPath: path } });
      assert.deepEqual(dsig.signingPublicKey, scheme.derivePublicKey(infos[0]!, path));
      assert.ok(independentVerify(scheme, dsig, msg), 'derived signature');
      assert.ok(!independentVerify(scheme, { ...dsig, signingPublicKey: sig.signingPublicKey }, msg));
    });
  }

  test(`${scheme.name}: every 3-subset of a 3-of-5 signs (root and derived)`, () => {
    const shares = key(scheme, 3, 5);
    const msg = new TextEncoder().encode(`custos ${scheme.name}`);
    const all = subsets(range(5), 3);
    assert.equal(all.length, 10);
    all.forEach((signers, i) => {
      const path = i % 2 === 0 ? undefined : `m/${i}/${i * 31}`;
      const sig = runSign(scheme, shares, signers, msg, { params: { derivationPath: path } });
      assert.ok(independentVerify(scheme, sig, msg), `signers ${signers} path ${path}`);
    });
  });

  test(`${scheme.name}: t-1 cannot sign`, () => {
    const shares = key(scheme, 3, 5);
    const msg = Uint8Array.of(1, 2, 3);
    // The API refuses fewer than t signers.
    assert.throws(
      () => scheme.sign({ sessionId: newSessionId(), share: shares.get(1)!, signers: [1, 2], message: msg }),
      /exactly 3 signers/,
    );
    // t signers named but one never takes part: the others abort naming it, and nobody outputs.
    const sessionId = newSessionId();
    const signers = [1, 2, 5];
    const parties = [1, 2].map((id) =>
      scheme.sign({ sessionId, share: shares.get(id)!, signers, message: msg }),
    );
    assert.throws(
      () => runLocalProtocol(parties),
      (e: unknown) => e instanceof ThresholdAbort && e.culprit === 5 && e.reason === 'missing-message',
    );
    assert.ok(parties.every((p) => !p.done));
  });

  test(`${scheme.name}: refresh keeps the public key; old and new shares do not combine`, () => {
    const shares = runDkg(scheme, 2, range(3));
    const refreshed = runRefresh(scheme, shares);
    const info = shares.get(1)!.info;
    for (const s of refreshed.values()) {
      assert.deepEqual(s.info.publicKey, info.publicKey);
      assert.deepEqual(s.info.chainCode, info.chainCode);
      assert.notDeepEqual(s.commitments.slice(1), shares.get(s.partyId)!.commitments.slice(1));
    }
    const msg = Uint8Array.of(9);
    assert.ok(independentVerify(scheme, runSign(scheme, refreshed, [1, 3], msg), msg));
    assert.ok(
      independentVerify(
        scheme,
        runSign(scheme, refreshed, [2, 3], msg, { params: { derivationPath: 'm/5' } }),
        msg,
      ),
    );
    // Party 1 with its old share, party 3 with the new one: refused with a named culprit.
    const mixed = new Map([
      [1, shares.get(1)!],
      [3, refreshed.get(3)!],
    ]);
    assert.throws(
      () => runSign(scheme, mixed, [1, 3], msg),
      (e: unknown) => e instanceof ThresholdAbort && e.culprit !== null && e.reason === 'invalid-signature',
    );
  });

  test(`${scheme.name}: reshare 2-of-3 -> 3-of-5 -> 2-of-2 keeps the public key`, () => {
    const shares = runDkg(scheme, 2, range(3));
    const info = shares.get(1)!.info;
    const msg = Uint8Array.of(7, 7);
    // Old committee {1,2,3} (2 of them take part) to new committee {2,4,5,6,7}, threshold 3.
    const next = runReshare(scheme, shares, [1, 3], [2, 4, 5, 6, 7], 3);
    assert.equal(next.get(1)!.retired, true);
    assert.equal(next.get(3)!.retired, true);
    const fresh = new Map([...next].filter(([, s]) => !s.retired));
    assert.deepEqual([...fresh.keys()].sort(), [2, 4, 5, 6, 7]);
    for (const s of fresh.values()) {
      assert.deepEqual(s.info.publicKey, info.publicKey);
      assert.equal(s.info.threshold, 3);
      assert.deepEqual(s.info.parties, [2, 4, 5, 6, 7]);
    }
    for (const signers of [
      [2, 4, 5],
      [5, 6, 7],
      [2, 6, 7],
    ]) {
      const sig = runSign(scheme, fresh, signers, msg, { params: { derivationPath: 'm/1/2' } });
      assert.ok(independentVerify(scheme, sig, msg));
      assert.deepEqual(sig.signingPublicKey, scheme.derivePublicKey(info, 'm/1/2'));
    }
    // Retired shares cannot sign.
    assert.throws(
      () => scheme.sign({ sessionId: newSessionId(), share: next.get(1)!, signers: [1, 2], message: msg }),
      /retired/,
    );
    // Down to a disjoint 2-of-2 committee.
    const last = new Map([...runReshare(scheme, fresh, [4, 5, 6], [8, 9], 2)].filter(([, s]) => !s.retired));
    assert.deepEqual([...last.keys()].sort(), [8, 9]);
    const sig = runSign(scheme, last, [8, 9], msg);
    assert.deepEqual(sig.signingPublicKey, info.publicKey);
    assert.ok(independentVerify(scheme, sig, msg));
  });

  test(`${scheme.name}: reshare replacing one party (same threshold): old shares do not combine with new ones`, () => {
    const shares = runDkg(scheme, 2, range(3));
    const msg = Uint8Array.of(4, 2);
    // {1,2,3} -> {1,2,4}, still 2-of-3: parties 1 and 2 stay, 3 is replaced by 4.
    const next = new Map([...runReshare(scheme, shares, [1, 2], [1, 2, 4], 2)].filter(([, s]) => !s.retired));
    assert.deepEqual([...next.keys()].sort(), [1, 2, 4]);
    assert.ok(independentVerify(scheme, runSign(scheme, next, [1, 4], msg), msg));
    assert.ok(independentVerify(scheme, runSign(scheme, next, [2, 4], msg), msg));
    // Both in both committees: the protocol itself refuses the combination, naming a culprit.
    const mixed = new Map([
      [1, shares.get(1)!],
      [2, next.get(2)!],
    ]);
    assert.throws(
      () => runSign(scheme, mixed, [1, 2], msg),
      (e: unknown) => e instanceof ThresholdAbort && e.culprit !== null && e.reason === 'invalid-signature',
    );
    // An old share next to the newcomer: its committee does not know party 4.
    const across = new Map([
      [2, shares.get(2)!],
      [4, next.get(4)!],
    ]);
    assert.throws(() => runSign(scheme, across, [2, 4], msg), /signer 4 not in committee/);
  });
}

test('schnorr-bip340: HD matches BIP32 on the xpub, odd-Y children sign correctly', () => {
  const shares = key(frostBip340, 2, 3);
  const info = shares.get(1)!.info;
  const xpub = frostBip340.xpub(info);
  const hd = HDKey.fromExtendedKey(xpub);
  assert.equal(hd.publicKey![0], 0x02, 'root normalised to even Y');
  assert.deepEqual(hd.publicKey!.slice(1), info.publicKey);
  const parities = new Set<number>();
  for (let i = 0; i < 8; i++) {
    const path = `m/0/${i}`;
    const child = hd.derive(path).publicKey!;
    parities.add(child[0]!);
    const x = frostBip340.derivePublicKey(info, path);
    assert.deepEqual(x, child.slice(1), path);
    const msg = randomBytes(32);
    const sig = runSign(frostBip340, shares, [1, 2], msg, { params: { derivationPath: path } });
    assert.deepEqual(sig.signingPublicKey, x);
    assert.ok(schnorr.verify(sig.signature, msg, x), path);
  }
  assert.equal(parities.size, 2, 'both even and odd children exercised');
});

test('schnorr-bip340: Taproot key-path (BIP86 and script tree) output-key signatures', () => {
  const shares = key(frostBip340, 2, 3);
  const info = shares.get(1)!.info;
  const Point = schnorr.Point;
  for (const [path, merkleRoot] of [
    ['m/0/1', new Uint8Array(0)],
    ['m/0/2', new Uint8Array(0)],
    ['m', randomBytes(32)],
  ] as const) {
    // BIP341 taproot_tweak_pubkey, computed here from the xpub independently of our code.
    const internal = HDKey.fromExtendedKey(frostBip340.xpub(info)).derive(path).publicKey!.slice(1);
    const t = BigInt(
      `0x${Buffer.from(schnorr.utils.taggedHash('TapTweak', internal, merkleRoot)).toString('hex')}`,
    );
    const Q = schnorr.utils
      .lift_x(BigInt(`0x${Buffer.from(internal).toString('hex')}`))
      .add(Point.BASE.multiply(t));
    const outputKey = Q.toBytes(true).slice(1);
    assert.deepEqual(frostBip340.taprootOutputKey(info, path, merkleRoot), outputKey);
    const msg = randomBytes(32);
    const sig = runSign(frostBip340, shares, [2, 3], msg, {
      params: { derivationPath: path, taproot: { merkleRoot } },
    });
    assert.deepEqual(sig.signingPublicKey, outputKey);
    assert.ok(schnorr.verify(sig.signature, msg, outputKey));
  }
});

test('eddsa-ed25519: derived-path signatures verify with OpenSSL under the derived key', () => {
  const shares = key(frostEd25519, 2, 3);
  const info = shares.get(1)!.info;
  for (const path of ['m/0', 'm/44/501/0/0', 'm/2147483647/1']) {
    const msg = randomBytes(64);
    const sig = runSign(frostEd25519, shares, [1, 3], msg, { params: { derivationPath: path } });
    assert.deepEqual(sig.signingPublicKey, frostEd25519.derivePublicKey(info, path));
    assert.ok(independentVerify(frostEd25519, sig, msg), path);
  }
  assert.throws(() => frostEd25519.derivePublicKey(info, "m/0'"), /hardened/);
});
