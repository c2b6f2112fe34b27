// Security events of the MPC layer: every rejected envelope or request, every cheating verdict and key
// lock. Nodes and the coordinator each own a SecurityEvents emitter; the API's
// `GET /v1/security-events` (and the audit log) subscribe with `on('event', …)`. Every event is also
// logged at warn level by whoever emits it.
import { EventEmitter } from 'node:events';

export type SecurityEventKind =
  | 'unknown-sender' // envelope from a node id not in the cluster file
  | 'bad-signature' // envelope or heartbeat signature does not verify (forged or tampered)
  | 'malformed' // envelope cannot be parsed
  | 'misrouted' // envelope addressed to another node
  | 'decrypt-failed' // point-to-point ciphertext failed authentication (tampered)
  | 'replay' // an envelope (session, sender, seq) seen before
  | 'wrong-session' // sender not a participant of the session, or protocol mismatch
  | 'stale-round' // message for a round the session has already passed
  | 'duplicate-message' // a second, different message from one sender for one round
  | 'unknown-session' // buffered envelopes for a session that never started here
  | 'oversize' // envelope larger than the per-peer limit
  | 'rate-limited' // peer exceeded its message rate
  | 'bad-request' // control-plane request with a bad signature, expired, or reused id
  | 'unauthorized' // authorize chain refused a request
  | 'cheating' // a protocol abort with a cheating verdict
  | 'key-locked'; // a key was locked

export interface SecurityEvent {
  at: string;
  /** Who observed it: 'node-2', 'coordinator'. */
  observer: string;
  kind: SecurityEventKind;
  /** The peer the event is about (sender node id, culprit), when known. */
  peer?: number;
  sessionId?: string;
  keyId?: string;
  protocol?: string;
  round?: number;
  detail: string;
}

export class SecurityEvents extends EventEmitter<{ event: [SecurityEvent] }> {
  /** The last events, newest last (bounded), for status and tests. */
  readonly recent: SecurityEvent[] = [];
  constructor(
    readonly observer: string,
    private readonly log?: { warn(obj: object, msg?: string): void },
    private readonly keep = 1000,
  ) {
    super();
  }

  emitEvent(e: Omit<SecurityEvent, 'at' | 'observer'>): SecurityEvent {
    const ev: SecurityEvent = { at: new Date().toISOString(), observer: this.observer, ...e };
    this.log?.warn({ securityEvent: ev }, `mpc security event: ${ev.kind}`);
    this.forward(ev);
    return ev;
  }

  /** Records and emits an event observed elsewhere (e.g. an in-process node's), without logging it again. */
  forward(ev: SecurityEvent): void {
    this.recent.push(ev);
    if (this.recent.length > this.keep) this.recent.splice(0, this.recent.length - this.keep);
    this.emit('event', ev);
  }

  /** Forwards every event of `other` into this emitter (one stream for several observers). */
  pipeFrom(other: SecurityEvents): () => void {
    const f = (ev: SecurityEvent) => this.forward(ev);
    other.on('event', f);
    return () => other.off('event', f);
  }
}
