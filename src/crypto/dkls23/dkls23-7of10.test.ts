// Acceptance 1 at the largest committee size: 7-of-10. Kept small (one DKG, two signatures) because
// a 10-party DKG runs 90 pairwise base-OT setups in this single process.
import { test } from 'node:test';
import { assertValid, dkg, presignAndSign, randomMessage } from './helpers.test-util.ts';
import { dkls23Ecdsa as S } from './index.ts';

test('7-of-10: signatures from two different 7-subsets, one under a derived path', () => {
  const keys = dkg(7, 10);
  const info = keys.get(1)!.info;
  const a = randomMessage();
  assertValid(presignAndSign(keys, [1, 2, 3, 4, 5, 6, 7], a.digest), info.publicKey, a.message, a.digest);
  const b = randomMessage();
  const path = 'm/3/1';
  assertValid(
    presignAndSign(keys, [2, 4, 5, 6, 8, 9, 10], b.digest, path),
    S.derivePublicKey(info, path),
    b.message,
    b.digest,
  );
});
