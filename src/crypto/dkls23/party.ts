// Round machinery shared by every DKLs23 protocol party: header validation (version, protocol,
// session, round, sender in committee, addressee, duplicates, missing messages), typed aborts that
// name the culprit, the dead-after-abort rule, and redaction of secrets from inspection.
import { inspect } from 'node:util';
import { VerifyError } from '../ot/base-ot.ts';
import { DecodeError } from '../ot/encoding.ts';
import {
  type AbortReason,
  type PartyId,
  PROTOCOL_MESSAGE_VERSION,
  type ProtocolMessage,
  type ProtocolParty,
  type StepResult,
  ThresholdAbort,
} from '../threshold.ts';

export interface Inbound {
  bcast?: Uint8Array;
  p2p?: Uint8Array;
}

/** What a sender must send us in a round. */
export interface Expect {
  bcast: boolean;
  p2p: boolean;
}

export function checkSessionId(sid: string, ctx: string): void {
  if (typeof sid !== 'string' || !/^[0-9a-f]{64}$/.test(sid)) {
    throw new TypeError(`${ctx}: sessionId must be 32 bytes of lowercase hex`);
  }
}

export function checkPartyId(id: number, ctx: string): void {
  if (!Number.isInteger(id) || id < 1 || id > 255)
    throw new TypeError(`${ctx}: party id ${id} out of range 1..255`);
}

export function checkCommittee(ids: readonly PartyId[], ctx: string): PartyId[] {
  if (!Array.isArray(ids)) throw new TypeError(`${ctx}: committee must be an array`);
  for (const id of ids) checkPartyId(id, ctx);
  const sorted = [...ids].sort((a, b) => a - b);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i] === sorted[i - 1]) throw new TypeError(`${ctx}: duplicate party id ${sorted[i]}`);
  }
  return sorted;
}

export abstract class Dkls23Party<Out> implements ProtocolParty<Out> {
  readonly protocol: string;
  readonly sessionId: string;
  readonly partyId: PartyId;
  expectedRound = 0;
  expectedSenders: PartyId[] = [];
  done = false;
  #dead = false;
  #started = false;
  /** Everyone taking part in the session (for sender validation). */
  protected readonly participants: ReadonlySet<PartyId>;

  constructor(protocol: string, sessionId: string, partyId: PartyId, participants: readonly PartyId[]) {
    checkSessionId(sessionId, protocol);
    checkPartyId(partyId, protocol);
    this.protocol = protocol;
    this.sessionId = sessionId;
    this.partyId = partyId;
    this.participants = new Set(participants);
    if (!this.participants.has(partyId))
      throw new TypeError(`${protocol}: party ${partyId} not in the session`);
  }

  protected abstract onStart(): StepResult<Out>;
  protected abstract onRound(round: number, inbound: Map<PartyId, Inbound>): StepResult<Out>;
  /** Which senders send what in `round` (called when the round becomes expected). */
  protected abstract expectations(round: number): Map<PartyId, Expect>;
  protected abstract wipe(): void;

  start(): StepResult<Out> {
    if (this.#dead || this.#started) this.fail('bad-state', null, 'start() called twice or after abort', 0);
    this.#started = true;
    return this.guard(0, () => this.advance(this.onStart()));
  }

  receive(messages: readonly ProtocolMessage[]): StepResult<Out> {
    if (this.#dead || !this.#started || this.done) {
      this.fail(
        'bad-state',
        null,
        this.done ? 'protocol already finished' : 'party not running',
        this.expectedRound,
      );
    }
    const round = this.expectedRound;
    return this.guard(round, () => {
      const inbound = this.collect(round, messages);
      return this.advance(this.onRound(round, inbound));
    });
  }

  destroy(): void {
    this.#dead = true;
    this.wipe();
  }

  private advance(r: StepResult<Out>): StepResult<Out> {
    if (r.output !== undefined) {
      this.done = true;
      this.expectedSenders = [];
      this.wipe();
      return r;
    }
    this.expectedRound += 1;
    this.expectedSenders = [...this.expectations(this.expectedRound).keys()].sort((a, b) => a - b);
    return r;
  }

  private guard(round: number, fn: () => StepResult<Out>): StepResult<Out> {
    try {
      return fn();
    } catch (e) {
      this.#dead = true;
      this.wipe();
      if (e instanceof ThresholdAbort) throw e;
      throw new ThresholdAbort({
        protocol: this.protocol,
        round,
        culprit: null,
        reason: 'bad-state',
        message: `internal error: ${(e as Error).message}`,
      });
    }
  }

  /** Abort: the party is dead, secrets are wiped, the error names the culprit. */
  protected fail(
    reason: AbortReason,
    culprit: PartyId | null,
    message: string,
    round = this.expectedRound,
  ): never {
    this.#dead = true;
    this.wipe();
    throw new ThresholdAbort({
      protocol: this.protocol,
      round,
      culprit,
      reason,
      message: culprit === null ? message : `party ${culprit}: ${message}`,
    });
  }

  /** Run a check on one sender's data; decoding and verification errors become culprit aborts. */
  protected from<T>(sender: PartyId, fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      if (e instanceof ThresholdAbort) throw e;
      if (e instanceof DecodeError) this.fail('bad-message', sender, e.message);
      if (e instanceof VerifyError) this.fail('invalid-proof', sender, e.message);
      throw e;
    }
  }

  protected message(to: PartyId | null, payload: Uint8Array): ProtocolMessage {
    return {
      v: PROTOCOL_MESSAGE_VERSION,
      protocol: this.protocol,
      sessionId: this.sessionId,
      round: this.expectedRound + 1,
      from: this.partyId,
      to,
      payload,
    };
  }

  private collect(round: number, messages: readonly ProtocolMessage[]): Map<PartyId, Inbound> {
    if (!Array.isArray(messages)) this.fail('bad-message', null, 'messages must be an array');
    const expect = this.expectations(round);
    const got = new Map<PartyId, Inbound>();
    for (const m of messages) {
      const from = typeof m?.from === 'number' ? m.from : null;
      if (!this.participants.has(from as PartyId) || from === this.partyId) {
        this.fail('unknown-sender', from, `sender ${String(from)} is not a member of this session`);
      }
      const s = from as PartyId;
      if (m.v !== PROTOCOL_MESSAGE_VERSION) this.fail('bad-message', s, `unsupported message version ${m.v}`);
      if (m.protocol !== this.protocol)
        this.fail('wrong-session', s, `protocol ${m.protocol} != ${this.protocol}`);
      if (m.sessionId !== this.sessionId) this.fail('wrong-session', s, 'message from another session');
      if (m.round !== round) this.fail('wrong-round', s, `round ${m.round}, expected ${round}`);
      if (!(m.payload instanceof Uint8Array)) this.fail('bad-message', s, 'payload is not bytes');
      if (m.to !== null && m.to !== this.partyId) this.fail('bad-message', s, `message addressed to ${m.to}`);
      const e = expect.get(s);
      const kind = m.to === null ? 'bcast' : 'p2p';
      if (!e?.[kind]) this.fail('bad-message', s, `unexpected ${kind} message in round ${round}`);
      const slot = got.get(s) ?? {};
      if (slot[kind] !== undefined) this.fail('duplicate-message', s, `duplicate ${kind} message`);
      slot[kind] = m.payload;
      got.set(s, slot);
    }
    for (const [s, e] of [...expect].sort((a, b) => a[0] - b[0])) {
      const slot = got.get(s);
      if (e.bcast && slot?.bcast === undefined) this.fail('missing-message', s, 'broadcast message missing');
      if (e.p2p && slot?.p2p === undefined) this.fail('missing-message', s, 'point-to-point message missing');
    }
    return got;
  }

  toJSON(): object {
    return {
      protocol: this.protocol,
      sessionId: this.sessionId,
      partyId: this.partyId,
      round: this.expectedRound,
    };
  }
  toString(): string {
    return `[${this.protocol} party ${this.partyId} session ${this.sessionId.slice(0, 8)}…]`;
  }
  [inspect.custom](): string {
    return this.toString();
  }
}

/** Lagrange coefficient at 0 for `i` within `set` (mod q). */
export function lagrange(i: PartyId, set: readonly PartyId[], N: bigint, inv: (x: bigint) => bigint): bigint {
  let num = 1n;
  let den = 1n;
  for (const j of set) {
    if (j === i) continue;
    num = (num * BigInt(j)) % N;
    den = (den * ((BigInt(j) - BigInt(i) + N) % N)) % N;
  }
  return (num * inv(den)) % N;
}
