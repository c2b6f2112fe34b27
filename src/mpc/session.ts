// Drives one ProtocolParty over the channel: start, then feed it each round's messages once every
// expected sender's message is in, until it outputs — or the deadline passes (MpcTimeout naming the
// parties that stayed silent). Stale-round and conflicting duplicate messages are dropped and raised
// as security events; a ThresholdAbort from the party propagates unchanged.
import type { PartyId, ProtocolParty } from '../crypto/threshold.ts';
import type { Channel, InboundBundle, SessionInbox } from './channel.ts';
import type { SecurityEvents } from './events.ts';

export class SessionTimeout extends Error {
  override readonly name = 'SessionTimeout';
  constructor(
    readonly protocol: string,
    readonly round: number,
    readonly missing: readonly PartyId[],
  ) {
    super(`${protocol}/round${round}: timed out waiting for node(s) ${missing.join(', ')}`);
  }
}

/** A participant said it will not take part (e.g. it does not have the key yet). */
export class SessionDeclined extends Error {
  override readonly name = 'SessionDeclined';
  constructor(
    readonly protocol: string,
    readonly by: PartyId,
  ) {
    super(`${protocol}: node ${by} declined the session`);
  }
}

export interface RunPartyContext {
  channel: Channel;
  inbox: SessionInbox;
  participants: readonly PartyId[];
  events: SecurityEvents;
  deadline: number;
  /** Heartbeat liveness of a peer: waiting for a peer that stopped heartbeating ends early. */
  peerAlive?: (id: PartyId) => boolean;
  /** A participant that declined (checked whenever a message arrives): ends the wait at once. */
  declinedBy?: () => PartyId | null;
}

export async function runParty<Out>(ctx: RunPartyContext, party: ProtocolParty<Out>): Promise<Out> {
  const { channel, inbox, participants } = ctx;
  let r = party.start();
  await channel.send(r.outgoing, participants);
  if (r.output !== undefined) return r.output;
  for (;;) {
    const round = party.expectedRound;
    const expected = party.expectedSenders;
    const got = new Map<PartyId, InboundBundle>();
    for (let i = 0; i < inbox.messages.length; ) {
      const b = inbox.messages[i]!;
      if (b.protocol !== party.protocol || b.sessionId !== party.sessionId || b.round > round) {
        i++;
        continue;
      }
      inbox.messages.splice(i, 1);
      if (b.round < round || !expected.includes(b.from)) {
        ctx.events.emitEvent({
          kind: 'stale-round',
          peer: b.from,
          sessionId: b.sessionId,
          protocol: b.protocol,
          round: b.round,
          detail: `message for round ${b.round} while the session expects round ${round} from ${expected.join(',')}`,
        });
        continue;
      }
      if (got.has(b.from)) {
        ctx.events.emitEvent({
          kind: 'duplicate-message',
          peer: b.from,
          sessionId: b.sessionId,
          protocol: b.protocol,
          round: b.round,
          detail: 'a second message for the same round; the first one is used',
        });
        continue;
      }
      got.set(b.from, b);
    }
    if (!expected.every((s) => got.has(s))) {
      // Put the round's bundles back (in front) and wait for the rest.
      inbox.messages.unshift(...got.values());
      const declined = ctx.declinedBy?.() ?? null;
      if (declined !== null) throw new SessionDeclined(party.protocol, declined);
      const missing = expected.filter((s) => !got.has(s));
      const slice = ctx.peerAlive ? Math.min(ctx.deadline, Date.now() + 250) : ctx.deadline;
      if (!(await inbox.wait(slice))) {
        const dead = ctx.peerAlive ? missing.filter((s) => !ctx.peerAlive!(s)) : [];
        if (Date.now() >= ctx.deadline || inbox.closed || dead.length > 0) {
          throw new SessionTimeout(party.protocol, round, dead.length > 0 ? dead : missing);
        }
      }
      continue;
    }
    r = party.receive([...got.values()].flatMap((b) => b.messages));
    await channel.send(r.outgoing, participants);
    if (r.output !== undefined) return r.output;
  }
}
