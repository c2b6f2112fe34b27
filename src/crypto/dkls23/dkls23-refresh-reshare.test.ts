import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runLocalProtocol } from '../local-runner.ts';
import type { PartyId } from '../threshold.ts';
import { ThresholdAbort } from '../threshold.ts';
import { assertValid, dkg, presignAndSign, randomMessage, sid } from './helpers.test-util.ts';
import { type Dkls23KeyShare, reshareInfo, dkls23Ecdsa as S } from './index.ts';

function refresh(shares: Map<PartyId, Dkls23KeyShare>) {
  const s = sid();
  return runLocalProtocol([...shares.values()].map((share) => S.refresh({ sessionId: s, share })));
}

/** Old and new shares together: refused (different committee) or aborted (different key generation). */
const mixedSignFails = (shares: Dkls23KeyShare[], signers: PartyId[]) => {
  const { digest } = randomMessage();
  const s = sid();
  assert.throws(
    () => runLocalProtocol(shares.map((share) => S.sign({ sessionId: s, share, signers, message: digest }))),
    (e) => e instanceof ThresholdAbort || e instanceof TypeError,
  );
};

test('refresh: same public key, new shares and OT setup; old and new shares do not combine', () => {
  const old = dkg(2, 3);
  const fresh = refresh(old);
  const pub = old.get(1)!.info.publicKey;
  for (const s of fresh.values()) {
    assert.deepEqual(s.info.publicKey, pub);
    assert.deepEqual(s.info.chainCode, old.get(1)!.info.chainCode);
  }
  assert.notDeepEqual(S.exportShareForStorage(fresh.get(1)!), S.exportShareForStorage(old.get(1)!));
  const { message, digest } = randomMessage();
  assertValid(presignAndSign(fresh, [1, 3], digest), pub, message, digest);
  for (const pair of [
    [old.get(1)!, fresh.get(2)!],
    [fresh.get(1)!, old.get(2)!],
  ]) {
    const s = sid();
    const { digest } = randomMessage();
    assert.throws(
      () =>
        runLocalProtocol(
          pair.map((share) => S.sign({ sessionId: s, share, signers: [1, 2], message: digest })),
        ),
      (e) => e instanceof ThresholdAbort && e.reason === 'bad-message',
    );
  }
});

test('reshare 2-of-3 → 3-of-5 (adding 4 and 5): same key, old shares stop working with new ones', () => {
  const old = dkg(2, 3);
  const info = reshareInfo(old.get(1)!);
  const s = sid();
  const oldParties = [1, 2];
  const newParties = [1, 2, 3, 4, 5];
  const parties = [1, 2, 3, 4, 5].map((p) =>
    S.reshare({
      sessionId: s,
      partyId: p,
      ...(oldParties.includes(p) ? { share: old.get(p)! } : {}),
      info,
      oldParties,
      newParties,
      newThreshold: 3,
    }),
  );
  const fresh = runLocalProtocol(parties);
  for (const sh of fresh.values()) {
    assert.deepEqual(sh.info.publicKey, info.publicKey);
    assert.equal(sh.info.threshold, 3);
  }
  const { message, digest } = randomMessage();
  assertValid(presignAndSign(fresh, [2, 4, 5], digest), info.publicKey, message, digest);
  assertValid(presignAndSign(fresh, [1, 3, 5], digest), info.publicKey, message, digest);
  mixedSignFails([old.get(1)!, fresh.get(2)!], [1, 2]);
  mixedSignFails([old.get(1)!, old.get(2)!, fresh.get(3)!], [1, 2, 3]);
});

test('reshare replacing a party: 2-of-3 {1,2,3} → 2-of-3 {1,2,4}; party 3 gets a retired tombstone', () => {
  const old = dkg(2, 3);
  const info = reshareInfo(old.get(1)!);
  const s = sid();
  const oldParties = [1, 2, 3];
  const newParties = [1, 2, 4];
  const out = runLocalProtocol(
    [1, 2, 3, 4].map((p) =>
      S.reshare({
        sessionId: s,
        partyId: p,
        ...(oldParties.includes(p) ? { share: old.get(p)! } : {}),
        info,
        oldParties,
        newParties,
        newThreshold: 2,
      }),
    ),
  );
  assert.equal(out.get(3)!.active, false);
  out.delete(3);
  const { message, digest } = randomMessage();
  assertValid(presignAndSign(out, [1, 4], digest), info.publicKey, message, digest);
  assertValid(presignAndSign(out, [2, 4], digest), info.publicKey, message, digest);
  assert.throws(() => S.presign!({ sessionId: sid(), share: old.get(3)!, signers: [3, 4] }));
  // Same committee members, same threshold: an old share and a new one are refused by the protocol.
  for (const pair of [
    [old.get(1)!, out.get(2)!],
    [out.get(1)!, old.get(2)!],
  ]) {
    const { digest } = randomMessage();
    const s = sid();
    assert.throws(
      () =>
        runLocalProtocol(
          pair.map((share) => S.sign({ sessionId: s, share, signers: [1, 2], message: digest })),
        ),
      (e) => e instanceof ThresholdAbort && e.culprit !== null,
    );
  }
});

test('reshare: a dealer that deals a wrong constant term is named', () => {
  const old = dkg(2, 3);
  const info = reshareInfo(old.get(1)!);
  const s = sid();
  // Party 2 uses a share from another key: its C_0 will not match λ_2·X_2.
  const other = dkg(2, 3);
  const parties = [1, 2, 3].map((p) =>
    S.reshare({
      sessionId: s,
      partyId: p,
      share: p === 2 ? other.get(2)! : old.get(p)!,
      info: p === 2 ? reshareInfo(other.get(2)!) : info,
      oldParties: [1, 2, 3],
      newParties: [1, 2, 3],
      newThreshold: 2,
    }),
  );
  assert.throws(
    () => runLocalProtocol(parties),
    (e) => e instanceof ThresholdAbort && e.culprit === 2,
  );
});
