// RFC 9591 Appendix E test vectors, run through our protocol layer: key shares built from the vector's
// polynomial (dealer mode, App. C), nonces from the vector's randomness, signing through the two-round
// state machine and the local runner; commitments, signature shares and the signature must match.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { runLocalProtocol } from '../local-runner.ts';
import type { SchemeSignature } from '../threshold.ts';
import { createFrostScheme } from './scheme.ts';
import { FrostKeyShare, nonceBuffersForTest } from './share.ts';
import { decodeScalar, ed25519Suite, type FrostSuite, secp256k1RfcSuite } from './suites.ts';
import { newSessionId } from './test-support.ts';
import { decodePayload, KIND } from './wire.ts';

interface Vector {
  config: { MAX_PARTICIPANTS: string; MIN_PARTICIPANTS: string; NUM_PARTICIPANTS: string; name: string };
  inputs: {
    participant_list: number[];
    group_secret_key: string;
    verifying_key_key: string;
    message: string;
    share_polynomial_coefficients: string[];
    participant_shares: { identifier: number; participant_share: string }[];
  };
  round_one_outputs: {
    outputs: {
      identifier: number;
      hiding_nonce_randomness: string;
      binding_nonce_randomness: string;
      hiding_nonce: string;
      binding_nonce: string;
      hiding_nonce_commitment: string;
      binding_nonce_commitment: string;
    }[];
  };
  round_two_outputs: { outputs: { identifier: number; sig_share: string }[] };
  final_output: { sig: string };
}

const h = (s: string) => Uint8Array.from(Buffer.from(s, 'hex'));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

const cases: [string, string, FrostSuite][] = [
  ['FROST(Ed25519, SHA-512)', 'rfc9591-ed25519-sha512.json', ed25519Suite],
  ['FROST(secp256k1, SHA-256)', 'rfc9591-secp256k1-sha256.json', secp256k1RfcSuite],
];

for (const [name, file, suite] of cases) {
  test(`RFC 9591 App. E: ${name}`, () => {
    const v: Vector = JSON.parse(
      readFileSync(new URL(`../../../test/vectors/frost/${file}`, import.meta.url), 'utf8'),
    );
    assert.equal(v.config.name, name);
    const scheme = createFrostScheme(suite);
    const Fn = suite.Fn;
    const max = Number(v.config.MAX_PARTICIPANTS);
    const min = Number(v.config.MIN_PARTICIPANTS);
    const parties = Array.from({ length: max }, (_, i) => i + 1);

    // Dealer key generation from the vector's polynomial (RFC 9591 App. C.1).
    const coeffs = [v.inputs.group_secret_key, ...v.inputs.share_polynomial_coefficients].map((c) =>
      decodeScalar(suite, h(c)),
    );
    assert.equal(coeffs.length, min);
    const commitments = coeffs.map((c) => suite.BASE.multiply(c).toBytes(true));
    const evalAt = (x: bigint) => coeffs.reduceRight((acc, c) => Fn.add(Fn.mul(acc, x), c), 0n);
    const info = {
      scheme: suite.scheme,
      threshold: min,
      parties,
      publicKey: suite.encodePublicKey(suite.decodePoint(commitments[0]!)),
      chainCode: new Uint8Array(32),
    };
    assert.equal(hex(info.publicKey), v.inputs.verifying_key_key, 'group public key');
    const shares = new Map<number, FrostKeyShare>();
    for (const ps of v.inputs.participant_shares) {
      const s = evalAt(BigInt(ps.identifier));
      assert.equal(hex(Fn.toBytes(s)), ps.participant_share, `share of participant ${ps.identifier}`);
      shares.set(
        ps.identifier,
        FrostKeyShare.create({ suite, partyId: ps.identifier, info, commitments, signingShare: s }),
      );
    }

    // Round one with the vector's randomness (RFC 9591 §4.1 nonce_generate).
    const signers = v.inputs.participant_list;
    const nonces = new Map(
      v.round_one_outputs.outputs.map((o) => {
        const n = scheme.commitNonce(shares.get(o.identifier)!, {
          allowInjectedRandomness: true,
          randomness: [h(o.hiding_nonce_randomness), h(o.binding_nonce_randomness)],
        });
        const secret = nonceBuffersForTest(n)!;
        assert.equal(hex(secret.hiding), o.hiding_nonce, `hiding nonce ${o.identifier}`);
        assert.equal(hex(secret.binding), o.binding_nonce, `binding nonce ${o.identifier}`);
        assert.equal(hex(n.hiding), o.hiding_nonce_commitment, `hiding commitment ${o.identifier}`);
        assert.equal(hex(n.binding), o.binding_nonce_commitment, `binding commitment ${o.identifier}`);
        return [o.identifier, n] as const;
      }),
    );

    // Both rounds through our state machine; capture the wire values.
    const sessionId = newSessionId();
    const message = h(v.inputs.message);
    const sentShares = new Map<number, string>();
    const sentCommitments = new Map<number, [string, string]>();
    const parties2 = signers.map((id) =>
      scheme.sign({ sessionId, share: shares.get(id)!, signers, message, nonce: nonces.get(id)! }),
    );
    const out = runLocalProtocol<SchemeSignature>(parties2, {
      intercept: (m) => {
        const sid = h(m.sessionId);
        if (m.round === 1) {
          const d = decodePayload(
            suite,
            { kind: KIND.signCommit, sessionId: sid, round: 1, from: m.from, to: null },
            m.payload,
          );
          sentCommitments.set(m.from, [hex(d.bytes['hiding']!), hex(d.bytes['binding']!)]);
        } else {
          const d = decodePayload(
            suite,
            { kind: KIND.signShare, sessionId: sid, round: 2, from: m.from, to: null },
            m.payload,
          );
          sentShares.set(m.from, hex(d.bytes['signatureShare']!));
        }
        return m;
      },
    });
    for (const o of v.round_one_outputs.outputs) {
      assert.deepEqual(sentCommitments.get(o.identifier), [
        o.hiding_nonce_commitment,
        o.binding_nonce_commitment,
      ]);
    }
    for (const o of v.round_two_outputs.outputs) {
      assert.equal(sentShares.get(o.identifier), o.sig_share, `signature share of ${o.identifier}`);
    }
    assert.equal(out.size, signers.length);
    for (const sig of out.values()) {
      assert.equal(hex(sig.signature), v.final_output.sig, 'group signature');
      assert.equal(hex(sig.signingPublicKey), v.inputs.verifying_key_key);
    }
    // The nonces were single-use: consumed, and their buffers zeroed.
    for (const n of nonces.values()) assert.equal(n.consumed, true);
  });
}
