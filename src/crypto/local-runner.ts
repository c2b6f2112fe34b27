// Drives a set of ProtocolParty objects to completion in one process, delivering messages exactly as
// a transport would (broadcasts to every other participant, point-to-point to the addressee). Used by
// tests, benchmarks and `custos mpc demo`; nodes use the real transport in src/mpc instead.
import type { PartyId, ProtocolMessage, ProtocolParty } from './threshold.ts';

export interface RunOptions {
  /** Called on every message before delivery; return a replacement, or null to drop it. */
  intercept?: (m: ProtocolMessage) => ProtocolMessage | ProtocolMessage[] | null;
  /** Count bytes per party per round (payload bytes sent, broadcasts counted once). */
  traffic?: Map<string, number>;
}

/** Runs all parties to completion and returns their outputs by party id. Throws the first abort. */
export function runLocalProtocol<Out>(
  parties: ProtocolParty<Out>[],
  opts: RunOptions = {},
): Map<PartyId, Out> {
  const byId = new Map(parties.map((p) => [p.partyId, p]));
  const inbox = new Map<PartyId, ProtocolMessage[]>(parties.map((p) => [p.partyId, []]));
  const outputs = new Map<PartyId, Out>();

  const deliver = (sent: ProtocolMessage[]) => {
    for (const original of sent) {
      if (opts.traffic) {
        const k = `${original.protocol}/r${original.round}/p${original.from}`;
        opts.traffic.set(k, (opts.traffic.get(k) ?? 0) + original.payload.length);
      }
      const replaced = opts.intercept ? opts.intercept(original) : original;
      if (replaced === null) continue;
      for (const m of Array.isArray(replaced) ? replaced : [replaced]) {
        const targets = m.to === null ? [...byId.keys()].filter((id) => id !== m.from) : [m.to];
        for (const t of targets) inbox.get(t)?.push(m);
      }
    }
  };

  for (const p of parties) {
    const r = p.start();
    deliver(r.outgoing);
    if (r.output !== undefined) outputs.set(p.partyId, r.output);
  }
  // Bound the loop: no protocol here has more than a few dozen rounds.
  for (let guard = 0; guard < 1000 && outputs.size < parties.length; guard++) {
    let progressed = false;
    for (const p of parties) {
      if (p.done) continue;
      const round = p.expectedRound;
      const box = inbox.get(p.partyId)!;
      const mine = box.filter((m) => m.round === round);
      const senders = new Set(mine.map((m) => m.from));
      const complete = p.expectedSenders.every((s) => senders.has(s));
      // Deliver when complete, or when no other party can still make progress (lets the party
      // detect missing messages itself).
      if (!complete && !stalled(parties, inbox)) continue;
      inbox.set(
        p.partyId,
        box.filter((m) => m.round !== round),
      );
      const r = p.receive(mine);
      progressed = true;
      deliver(r.outgoing);
      if (r.output !== undefined) outputs.set(p.partyId, r.output);
    }
    if (!progressed && outputs.size < parties.length) {
      throw new Error('local protocol run stalled');
    }
  }
  return outputs;
}

function stalled<Out>(parties: ProtocolParty<Out>[], inbox: Map<PartyId, ProtocolMessage[]>): boolean {
  return parties.every((p) => {
    if (p.done) return true;
    const got = new Set(
      inbox
        .get(p.partyId)!
        .filter((m) => m.round === p.expectedRound)
        .map((m) => m.from),
    );
    return !p.expectedSenders.every((s) => got.has(s));
  });
}
