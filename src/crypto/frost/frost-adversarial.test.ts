// Negative tests for every message of every round of DKG, sign, refresh and reshare, both suites:
// each field tampered, the message dropped, duplicated, replayed from another session (as is, and with
// its envelope rewritten), and sent under another sender's name. Each must abort with the culprit
// named and no output anywhere.
//
// The misbehaving party is processed last by the runner: its own view is a cheater's view (for a
// tampered broadcast it alone holds the original), so the first abort must come from an honest party.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RunOptions } from '../local-runner.ts';
import { type PartyId, type ProtocolMessage, ThresholdAbort } from '../threshold.ts';
import { frostBip340, frostEd25519 } from './index.ts';
import type { FrostScheme } from './scheme.ts';
import type { FrostKeyShare } from './share.ts';
import { newSessionId, range, runDkg, runRefresh, runReshare, runSign } from './test-support.ts';
import { describePayload } from './wire.ts';

type Runner = (opts: RunOptions & { sessionId?: string; last?: PartyId }) => unknown;

interface Case {
  name: string;
  run: Runner;
}

function cases(scheme: FrostScheme): Case[] {
  const shares = runDkg(scheme, 2, range(3));
  const msg = new TextEncoder().encode('adversarial');
  return [
    { name: 'dkg', run: (o) => runDkg(scheme, 2, range(3), o) },
    {
      name: 'sign',
      run: (o) => runSign(scheme, shares, [1, 2], msg, { ...o, params: { derivationPath: 'm/3' } }),
    },
    { name: 'refresh', run: (o) => runRefresh(scheme, shares, o) },
    // Three dealers so new-only parties can tell a lying dealer by majority.
    {
      name: 'reshare',
      run: (o) => runReshare(scheme, shares as Map<PartyId, FrostKeyShare>, [1, 2, 3], [2, 3, 4, 5], 3, o),
    },
  ];
}

const slot = (m: ProtocolMessage) => `${m.round}/${m.from}/${m.to ?? 'all'}`;

/** One message per (round, broadcast or point-to-point), with the sender varying across rounds. */
function targets(recorded: ProtocolMessage[]): ProtocolMessage[] {
  const groups = new Map<string, ProtocolMessage[]>();
  for (const m of recorded) {
    const k = `${m.round}/${m.to === null}`;
    groups.set(k, [...(groups.get(k) ?? []), m]);
  }
  return [...groups.values()].map((ms) => {
    const first = ms[0]!;
    const preferred = ((first.round + (first.to === null ? 0 : 1)) % 3) + 1;
    return ms.find((m) => m.from === preferred) ?? first;
  });
}

function expectAbort(
  run: () => unknown,
  culprit: PartyId,
  reasons: readonly string[] | null,
  what: string,
): void {
  let err: unknown;
  try {
    run();
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof ThresholdAbort, `${what}: expected ThresholdAbort, got ${String(err)}`);
  assert.equal(err.culprit, culprit, `${what}: culprit (${err.message})`);
  if (reasons) assert.ok(reasons.includes(err.reason), `${what}: reason ${err.reason} (${err.message})`);
}

for (const scheme of [frostEd25519, frostBip340]) {
  for (const c of cases(scheme)) {
    test(`${scheme.name}/${c.name}: every field of every message, drop, duplicate, replay, wrong sender`, () => {
      // An honest run, recorded: the source of replays and the list of message slots.
      const recorded: ProtocolMessage[] = [];
      c.run({
        intercept: (m) => {
          recorded.push(m);
          return m;
        },
      });
      const bySlot = new Map(recorded.map((m) => [slot(m), m]));
      const list = targets(recorded);
      assert.ok(list.length >= 2, 'every round has a message');
      for (const target of list) {
        const j = target.from;
        const here = (m: ProtocolMessage) => m.round === target.round && m.from === j && m.to === target.to;
        const label = `${c.name} round ${target.round} from ${j} to ${target.to ?? 'all'}`;
        const run =
          (mutate: (m: ProtocolMessage) => ProtocolMessage | ProtocolMessage[] | null, last = j) =>
          () =>
            c.run({ sessionId: newSessionId(), last, intercept: (m) => (here(m) ? mutate(m) : m) });

        // Tamper each field of the payload.
        for (const f of describePayload(scheme.suite, target.payload)) {
          const flip = (m: ProtocolMessage): ProtocolMessage => {
            const p = m.payload.slice();
            p[f.offset + f.length - 1]! ^= 0x01;
            return { ...m, payload: p };
          };
          expectAbort(run(flip), j, null, `${label}: field ${f.name}`);
        }
        // Truncated and extended payloads.
        expectAbort(
          run((m) => ({ ...m, payload: m.payload.slice(0, -1) })),
          j,
          ['bad-message'],
          `${label}: truncated`,
        );
        expectAbort(
          run((m) => ({ ...m, payload: Uint8Array.of(...m.payload, 0) })),
          j,
          ['bad-message'],
          `${label}: trailing byte`,
        );
        // Dropped.
        expectAbort(
          run(() => null),
          j,
          ['missing-message'],
          `${label}: dropped`,
        );
        // Duplicated.
        expectAbort(
          run((m) => [m, m]),
          j,
          ['duplicate-message'],
          `${label}: duplicated`,
        );
        // Replayed from another session, as is and with the envelope rewritten to this session.
        const old = bySlot.get(slot(target))!;
        expectAbort(
          run(() => old),
          j,
          ['wrong-session'],
          `${label}: replay`,
        );
        expectAbort(
          run((m) => ({ ...old, sessionId: m.sessionId })),
          j,
          ['wrong-session'],
          `${label}: replay rewritten`,
        );
        // Envelope protocol/round changed.
        expectAbort(
          run((m) => ({ ...m, protocol: `${m.protocol}x` })),
          j,
          ['wrong-session'],
          `${label}: protocol`,
        );
        // Sent under the name of another committee member k (k, not j, is what the transport authenticated),
        // and under a party outside the session.
        const k = j === 1 ? 2 : 1;
        const rename = (m: ProtocolMessage): ProtocolMessage => ({
          ...m,
          from: k,
          to: m.to === k ? j : m.to,
        });
        expectAbort(
          run(rename, k),
          k,
          ['bad-message', 'duplicate-message', 'unknown-sender'],
          `${label}: wrong sender`,
        );
        expectAbort(
          run((m) => ({ ...m, from: 99 })),
          99,
          ['unknown-sender'],
          `${label}: unknown sender`,
        );
        if (target.to !== null) {
          const other = [1, 2, 3, 4, 5].find((x) => x !== j && x !== target.to)!;
          expectAbort(
            run((m) => ({ ...m, to: other })),
            j,
            ['missing-message', 'bad-message', 'duplicate-message', 'unknown-sender'],
            `${label}: misaddressed`,
          );
        }
      }
    });
  }
}

test('dead after abort: every later call is refused, no output', () => {
  const sessionId = newSessionId();
  const parties = range(3).map((partyId) =>
    frostEd25519.dkg({ sessionId, partyId, parties: range(3), threshold: 2 }),
  );
  const r1 = parties.map((p) => p.start().outgoing[0]!);
  const p1 = parties[0]!;
  assert.throws(
    () => p1.receive([r1[1]!]),
    (e: unknown) => e instanceof ThresholdAbort && e.culprit === 3,
  );
  assert.equal(p1.done, false);
  assert.throws(
    () => p1.receive([r1[1]!, r1[2]!]),
    (e: unknown) => e instanceof ThresholdAbort && e.reason === 'bad-state' && /aborted/.test(e.message),
  );
  assert.throws(
    () => p1.start(),
    (e: unknown) => e instanceof ThresholdAbort && e.reason === 'bad-state',
  );
});
