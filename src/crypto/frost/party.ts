// The state-machine shell shared by every FROST protocol (DKG, sign, reshare/refresh): checks each
// received envelope against the session, round, expected senders and addressee, decodes the payload
// strictly, turns every failure into a ThresholdAbort naming the culprit, and kills the party on abort
// (secrets zeroed, every later call refused, no output).
import { inspect } from 'node:util';
import type { PartyId, ProtocolMessage, ProtocolParty, StepResult } from '../threshold.ts';
import { PROTOCOL_MESSAGE_VERSION, ThresholdAbort } from '../threshold.ts';
import type { FrostSuite, GPoint } from './suites.ts';
import { withPointScope } from './suites.ts';
import type { Decoded, FieldValue, Kind } from './wire.ts';
import { decodePayload, encodePayload, PayloadError } from './wire.ts';

interface Expectation {
  kind: Kind;
  senders: PartyId[];
  broadcast: boolean;
}

export type AbortArgs = Omit<ConstructorParameters<typeof ThresholdAbort>[0], 'protocol' | 'round'>;

export function checkSessionId(ctx: string, sessionId: string): Uint8Array {
  if (typeof sessionId !== 'string' || !/^[0-9a-f]{64}$/.test(sessionId)) {
    throw new Error(`${ctx}: sessionId must be 32 bytes of lowercase hex`);
  }
  return Uint8Array.from(Buffer.from(sessionId, 'hex'));
}

export function checkPartyList(ctx: string, what: string, ids: readonly PartyId[]): PartyId[] {
  if (!Array.isArray(ids)) throw new Error(`${ctx}: ${what} must be an array`);
  for (const p of ids) {
    if (!Number.isInteger(p) || p < 1 || p > 255) throw new Error(`${ctx}: ${what}: bad party id ${p}`);
  }
  const sorted = [...ids].sort((a, b) => a - b);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i] === sorted[i - 1]) throw new Error(`${ctx}: ${what}: duplicate party ${sorted[i]}`);
  }
  return sorted;
}

export abstract class FrostParty<Out> implements ProtocolParty<Out> {
  readonly protocol: string;
  readonly sessionId: string;
  readonly partyId: PartyId;
  protected readonly suite: FrostSuite;
  protected readonly sid: Uint8Array;
  #round = 0;
  #state: 'new' | 'running' | 'done' | 'dead' = 'new';
  #expect: Expectation | null = null;
  /** Points validated in this session (by encoding), see suites.ts withPointScope. */
  readonly #pointScope = new Map<string, GPoint>();

  protected constructor(suite: FrostSuite, protocol: string, sessionId: string, partyId: PartyId) {
    this.suite = suite;
    this.protocol = protocol;
    this.sid = checkSessionId(protocol, sessionId);
    this.sessionId = sessionId;
    if (!Number.isInteger(partyId) || partyId < 1 || partyId > 255) {
      throw new Error(`${protocol}: bad party id ${partyId}`);
    }
    this.partyId = partyId;
  }

  get expectedRound(): number {
    return this.#round;
  }

  get expectedSenders(): readonly PartyId[] {
    return this.#state === 'running' && this.#expect ? this.#expect.senders : [];
  }

  get done(): boolean {
    return this.#state === 'done';
  }

  /** True once the party aborted (or was destroyed before finishing). */
  get dead(): boolean {
    return this.#state === 'dead';
  }

  start(): StepResult<Out> {
    if (this.#state !== 'new') this.#refuse('start() called twice');
    this.#state = 'running';
    return this.#guard(() => this.onStart());
  }

  receive(messages: readonly ProtocolMessage[]): StepResult<Out> {
    if (this.#state !== 'running' || !this.#expect) this.#refuse('receive() in the wrong state');
    return this.#guard(() => {
      const exp = this.#expect!;
      if (!Array.isArray(messages))
        this.abort({ culprit: null, reason: 'bad-state', message: 'expected an array' });
      const got = new Map<PartyId, Decoded>();
      for (const m of messages) got.set(...this.#check(m, exp, got));
      const missing = exp.senders.find((s) => !got.has(s));
      if (missing !== undefined) {
        this.abort({
          culprit: missing,
          reason: 'missing-message',
          message: `no message from party ${missing}`,
        });
      }
      return this.onReceive(this.#round, got);
    });
  }

  destroy(): void {
    if (this.#state !== 'done') this.#state = 'dead';
    this.#pointScope.clear();
    this.wipe();
  }

  /** Sets what the next receive() accepts; outgoing messages of that round use the same number. */
  protected expectNext(kind: Kind, senders: readonly PartyId[], broadcast: boolean): void {
    this.#round++;
    this.#expect = { kind, senders: [...senders].filter((s) => s !== this.partyId), broadcast };
  }

  protected message(kind: Kind, to: PartyId | null, values: Record<string, FieldValue>): ProtocolMessage {
    const round = this.#round;
    const payload = encodePayload(
      this.suite,
      { kind, sessionId: this.sid, round, from: this.partyId, to },
      values,
    );
    return {
      v: PROTOCOL_MESSAGE_VERSION,
      protocol: this.protocol,
      sessionId: this.sessionId,
      round,
      from: this.partyId,
      to,
      payload,
    };
  }

  protected finish(output: Out): StepResult<Out> {
    this.#state = 'done';
    this.#expect = null;
    this.#pointScope.clear();
    this.wipe();
    return { outgoing: [], output };
  }

  protected abort(args: AbortArgs): never {
    throw new ThresholdAbort({ protocol: this.protocol, round: this.#round, ...args });
  }

  protected abstract onStart(): StepResult<Out>;
  protected abstract onReceive(round: number, messages: Map<PartyId, Decoded>): StepResult<Out>;
  /** Zero every secret the party holds. Called on completion, abort and destroy(). */
  protected abstract wipe(): void;

  toJSON(): Record<string, unknown> {
    return {
      protocol: this.protocol,
      sessionId: this.sessionId,
      partyId: this.partyId,
      expectedRound: this.#round,
      state: this.#state,
    };
  }

  toString(): string {
    return `${this.protocol}(party ${this.partyId}, session ${this.sessionId}, round ${this.#round}, ${this.#state})`;
  }

  [inspect.custom](): string {
    return this.toString();
  }

  #check(m: ProtocolMessage, exp: Expectation, got: Map<PartyId, Decoded>): [PartyId, Decoded] {
    if (typeof m !== 'object' || m === null) {
      this.abort({ culprit: null, reason: 'bad-message', message: 'not a message' });
    }
    const from = m.from;
    if (!Number.isInteger(from) || from < 1 || from > 255) {
      this.abort({ culprit: null, reason: 'bad-message', message: `bad sender ${String(from)}` });
    }
    const fail = (reason: ThresholdAbort['reason'], message: string): never =>
      this.abort({ culprit: from, reason, message: `party ${from}: ${message}` });
    if (m.v !== PROTOCOL_MESSAGE_VERSION) fail('bad-message', `unsupported message version ${m.v}`);
    if (m.protocol !== this.protocol) fail('wrong-session', `message for protocol ${m.protocol}`);
    if (m.sessionId !== this.sessionId) fail('wrong-session', 'message from another session');
    if (m.round !== this.#round) fail('wrong-round', `message for round ${m.round}`);
    if (!exp.senders.includes(from)) fail('unknown-sender', 'not expected to send in this round');
    if (exp.broadcast ? m.to !== null : m.to !== this.partyId) fail('bad-message', 'wrong addressee');
    if (got.has(from)) fail('duplicate-message', 'second message in the same round');
    if (!(m.payload instanceof Uint8Array)) fail('bad-message', 'payload is not bytes');
    try {
      const d = decodePayload(
        this.suite,
        { kind: exp.kind, sessionId: this.sid, round: this.#round, from, to: m.to },
        m.payload,
      );
      return [from, d];
    } catch (e) {
      if (e instanceof PayloadError) return fail(e.reason, e.message);
      throw e;
    }
  }

  #guard(step: () => StepResult<Out>): StepResult<Out> {
    try {
      return withPointScope(this.#pointScope, step);
    } catch (e) {
      this.destroy();
      if (e instanceof ThresholdAbort) throw e;
      throw new ThresholdAbort({
        protocol: this.protocol,
        round: this.#round,
        culprit: null,
        reason: 'bad-state',
        message: `internal error: ${(e as Error)?.message ?? String(e)}`,
      });
    }
  }

  #refuse(why: string): never {
    throw new ThresholdAbort({
      protocol: this.protocol,
      round: this.#round,
      culprit: null,
      reason: 'bad-state',
      message: this.#state === 'dead' ? 'party aborted earlier; start a new session' : why,
    });
  }
}
