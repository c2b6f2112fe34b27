// The authenticated, encrypted node-to-node channel over the bus. Each node subscribes to
// `custos.mpc.node.<id>.p2p`; senders publish one envelope per recipient (a protocol broadcast is
// fanned out). Inbound envelopes pass, in order: size limit → parse → known sender → addressed to us
// → Ed25519 signature → per-peer rate limit → session checks (replay by (session, sender, seq),
// participant) → decryption. Anything rejected raises a security event. Envelopes for a session that
// has not started here yet are buffered for `bufferMs` (a faster peer may start first).
import type { Bus, Subscription } from '../bus/index.ts';
import type { ProtocolMessage } from '../crypto/threshold.ts';
import { PROTOCOL_MESSAGE_VERSION } from '../crypto/threshold.ts';
import {
  type BundleItem,
  type DecodedEnvelope,
  decodeBundle,
  decodeEnvelope,
  decryptBody,
  derivePairKey,
  encodeBundle,
  sealEnvelope,
  verifyEnvelopeSignature,
} from './envelope.ts';
import type { SecurityEvents } from './events.ts';
import type { NodeIdentity } from './identity.ts';

export interface PeerInfo {
  id: number;
  publicKey: Uint8Array;
  dhPublicKey: Uint8Array;
}

export interface ChannelLogger {
  debug(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface ChannelOptions {
  bus: Bus;
  identity: NodeIdentity;
  peers: readonly PeerInfo[];
  events: SecurityEvents;
  logger?: ChannelLogger;
  /** Largest envelope accepted from a peer. Default 1 MiB (the NATS default max payload). */
  maxMessageBytes?: number;
  /** Per-peer token bucket: sustained messages per second (burst = the same). Default 5000. */
  messagesPerSecond?: number;
  /** How long envelopes for a not-yet-started session are kept. Default 5000 ms. */
  bufferMs?: number;
  /** How long a finished session's replay state is kept. Default 10 min. */
  tombstoneMs?: number;
  /** Most buffered envelopes per peer. Default 4096. */
  maxBufferedPerPeer?: number;
  /** Cluster namespace (subject prefix custos.mpc.<namespace>). */
  namespace?: string;
  /** Tests only: rewrite (or drop) an outgoing protocol message before it is signed. */
  outgoingHook?: (m: ProtocolMessage) => ProtocolMessage | null;
}

export const p2pSubject = (id: number, namespace?: string): string =>
  `${namespace ? `custos.mpc.${namespace}` : 'custos.mpc'}.node.${id}.p2p`;

/** Everything one sender's protocol step sent to us: one envelope. */
export interface InboundBundle {
  protocol: string;
  sessionId: string;
  round: number;
  from: number;
  messages: ProtocolMessage[];
}

/** Bundles received for one session, in arrival order, already authenticated and decrypted. */
export class SessionInbox {
  readonly messages: InboundBundle[] = [];
  #wake: (() => void) | undefined;
  closed = false;
  constructor(
    readonly sessionId: string,
    readonly participants: ReadonlySet<number>,
  ) {}

  push(m: InboundBundle): void {
    this.messages.push(m);
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  /** Ends the session here: a pending wait returns at once (the node is stopping or the session ended). */
  close(): void {
    this.closed = true;
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  /** Resolves true when a message arrives, false at the deadline or when the inbox is closed. */
  wait(deadline: number): Promise<boolean> {
    const ms = deadline - Date.now();
    if (ms <= 0 || this.closed) return Promise.resolve(false);
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.#wake = undefined;
        resolve(false);
      }, ms);
      this.#wake = () => {
        clearTimeout(t);
        resolve(!this.closed);
      };
    });
  }

  /** Waits for the first message matching `pred`, removing it from the inbox. */
  async take(pred: (m: InboundBundle) => boolean, deadline: number): Promise<InboundBundle | null> {
    for (;;) {
      const i = this.messages.findIndex(pred);
      if (i >= 0) return this.messages.splice(i, 1)[0]!;
      if (!(await this.wait(deadline))) return null;
    }
  }
}

interface SessionRecord {
  seen: Map<number, Set<number>>;
  sendSeq: number;
  inbox: SessionInbox | undefined;
  pending: { msg: InboundBundle; at: number }[];
  createdAt: number;
  closedAt: number | undefined;
}

interface PeerState {
  info: PeerInfo;
  sendKey: Uint8Array;
  receiveKey: Uint8Array;
  tokens: number;
  refilledAt: number;
  buffered: number;
  /** Envelopes dropped by the rate limit since the last `rate-limited` event, and when that was. */
  dropped: number;
  droppedReportedAt: number;
}

type ControlHandler = (msg: InboundBundle) => void;

export class Channel {
  readonly #opts: ChannelOptions;
  readonly #identity: NodeIdentity;
  readonly #peers = new Map<number, PeerState>();
  readonly #sessions = new Map<string, SessionRecord>();
  readonly #control = new Map<string, ControlHandler>();
  #sub: Subscription | undefined;
  #gc: NodeJS.Timeout | undefined;
  readonly maxMessageBytes: number;
  readonly #rate: number;
  readonly #bufferMs: number;
  readonly #tombstoneMs: number;
  readonly #maxBuffered: number;

  constructor(opts: ChannelOptions) {
    this.#opts = opts;
    this.#identity = opts.identity;
    this.maxMessageBytes = opts.maxMessageBytes ?? 1024 * 1024;
    this.#rate = opts.messagesPerSecond ?? 5000;
    this.#bufferMs = opts.bufferMs ?? 5000;
    this.#tombstoneMs = opts.tombstoneMs ?? 10 * 60_000;
    this.#maxBuffered = opts.maxBufferedPerPeer ?? 4096;
    this.setPeers(opts.peers);
  }

  get id(): number {
    return this.#identity.id;
  }

  /** (Re)loads the peer list; pair keys are re-derived for any peer whose keys changed. */
  setPeers(peers: readonly PeerInfo[]): void {
    const keep = new Set<number>();
    for (const p of peers) {
      if (p.id === this.#identity.id) continue;
      keep.add(p.id);
      const old = this.#peers.get(p.id);
      if (
        old &&
        Buffer.from(old.info.publicKey).equals(Buffer.from(p.publicKey)) &&
        Buffer.from(old.info.dhPublicKey).equals(Buffer.from(p.dhPublicKey))
      ) {
        continue;
      }
      old?.sendKey.fill(0);
      old?.receiveKey.fill(0);
      this.#peers.set(p.id, {
        info: p,
        sendKey: derivePairKey(this.#identity, p, 'send'),
        receiveKey: derivePairKey(this.#identity, p, 'receive'),
        tokens: this.#rate,
        refilledAt: Date.now(),
        buffered: 0,
        dropped: 0,
        droppedReportedAt: 0,
      });
    }
    for (const id of [...this.#peers.keys()]) if (!keep.has(id)) this.#peers.delete(id);
  }

  hasPeer(id: number): boolean {
    return this.#peers.has(id);
  }

  async start(): Promise<void> {
    this.#sub = await this.#opts.bus.subscribe(p2pSubject(this.#identity.id, this.#opts.namespace), (m) =>
      this.#onEnvelope(m.data),
    );
    this.#gc = setInterval(() => this.#collect(), Math.min(1000, this.#bufferMs));
    this.#gc.unref();
  }

  async close(): Promise<void> {
    clearInterval(this.#gc);
    await this.#sub?.unsubscribe();
    this.#sub = undefined;
    for (const p of this.#peers.values()) {
      p.sendKey.fill(0);
      p.receiveKey.fill(0);
    }
    for (const r of this.#sessions.values()) r.inbox?.close();
  }

  /** Handles envelopes of `protocol` for sessions not open here (e.g. a leader's presign invitation). */
  onControl(protocol: string, handler: ControlHandler): void {
    this.#control.set(protocol, handler);
  }

  #record(sessionId: string): SessionRecord {
    let r = this.#sessions.get(sessionId);
    if (!r) {
      r = {
        seen: new Map(),
        sendSeq: 0,
        inbox: undefined,
        pending: [],
        createdAt: Date.now(),
        closedAt: undefined,
      };
      this.#sessions.set(sessionId, r);
    }
    return r;
  }

  /** Opens a session: buffered envelopes from its participants are delivered at once. */
  openSession(sessionId: string, participants: readonly number[]): SessionInbox {
    const r = this.#record(sessionId);
    if (r.inbox || r.closedAt !== undefined) {
      throw new Error(`channel: session ${sessionId.slice(0, 16)}… was already used on this node`);
    }
    const inbox = new SessionInbox(sessionId, new Set(participants));
    r.inbox = inbox;
    const pending = r.pending.splice(0);
    for (const { msg } of pending) {
      const peer = this.#peers.get(msg.from);
      if (peer) peer.buffered--;
      if (!inbox.participants.has(msg.from)) {
        this.#event('wrong-session', msg, `sender ${msg.from} is not a participant of the session`);
        continue;
      }
      inbox.push(msg);
    }
    return inbox;
  }

  /** Ends a session; its replay state is kept for tombstoneMs. */
  closeSession(sessionId: string): void {
    const r = this.#sessions.get(sessionId);
    if (!r) return;
    r.closedAt = Date.now();
    r.inbox?.close();
    r.inbox = undefined;
    r.pending = [];
  }

  /**
   * Signs, encrypts and publishes protocol messages to the session's participants: per recipient, one
   * envelope with every message of the same step (its broadcasts and the ones addressed to it).
   */
  async send(messages: readonly ProtocolMessage[], participants: readonly number[]): Promise<void> {
    const groups = new Map<string, { head: ProtocolMessage; items: BundleItem[] }>();
    for (const original of messages) {
      const m = this.#opts.outgoingHook ? this.#opts.outgoingHook(original) : original;
      if (m === null) continue;
      const targets = m.to === null ? participants.filter((p) => p !== this.#identity.id) : [m.to];
      for (const to of targets) {
        const k = `${to}/${m.protocol}/${m.sessionId}/${m.round}`;
        let g = groups.get(k);
        if (!g) {
          g = { head: { ...m, to }, items: [] };
          groups.set(k, g);
        }
        g.items.push({ broadcast: m.to === null, payload: m.payload });
      }
    }
    const pubs: Promise<void>[] = [];
    for (const { head, items } of groups.values()) {
      const to = head.to!;
      const peer = this.#peers.get(to);
      if (!peer) throw new Error(`channel: no peer ${to} in the cluster`);
      const r = this.#record(head.sessionId);
      const seq = ++r.sendSeq;
      const bytes = sealEnvelope(
        this.#identity,
        {
          protocol: head.protocol,
          sessionId: head.sessionId,
          round: head.round,
          from: this.#identity.id,
          to,
          seq,
        },
        encodeBundle(items),
        peer.sendKey,
      );
      if (bytes.length > this.maxMessageBytes) {
        throw new Error(
          `channel: message of ${bytes.length} bytes exceeds the ${this.maxMessageBytes} limit`,
        );
      }
      pubs.push(this.#opts.bus.publish(p2pSubject(to, this.#opts.namespace), bytes));
    }
    await Promise.all(pubs);
  }

  #event(
    kind: Parameters<SecurityEvents['emitEvent']>[0]['kind'],
    h: { from?: number; sessionId?: string; protocol?: string; round?: number },
    detail: string,
  ): void {
    this.#opts.events.emitEvent({
      kind,
      ...(h.from !== undefined ? { peer: h.from } : {}),
      ...(h.sessionId !== undefined ? { sessionId: h.sessionId } : {}),
      ...(h.protocol !== undefined ? { protocol: h.protocol } : {}),
      ...(h.round !== undefined ? { round: h.round } : {}),
      detail,
    });
  }

  #takeToken(peer: PeerState): boolean {
    const now = Date.now();
    peer.tokens = Math.min(this.#rate, peer.tokens + ((now - peer.refilledAt) / 1000) * this.#rate);
    peer.refilledAt = now;
    if (peer.tokens < 1) return false;
    peer.tokens -= 1;
    return true;
  }

  #onEnvelope(data: Uint8Array): void {
    if (data.length > this.maxMessageBytes) {
      this.#event('oversize', {}, `envelope of ${data.length} bytes exceeds ${this.maxMessageBytes}`);
      return;
    }
    let env: DecodedEnvelope;
    try {
      env = decodeEnvelope(data);
    } catch (e) {
      this.#event('malformed', {}, (e as Error).message);
      return;
    }
    const hdr = { from: env.from, sessionId: env.sessionId, protocol: env.protocol, round: env.round };
    const peer = this.#peers.get(env.from);
    if (!peer) {
      this.#event('unknown-sender', hdr, `node ${env.from} is not in the cluster`);
      return;
    }
    if (env.to !== null && env.to !== this.#identity.id) {
      this.#event('misrouted', hdr, `envelope for node ${env.to} delivered to node ${this.#identity.id}`);
      return;
    }
    if (!verifyEnvelopeSignature(env, peer.info.publicKey)) {
      this.#event('bad-signature', hdr, `envelope signature does not verify under node ${env.from}'s key`);
      return;
    }
    if (!this.#takeToken(peer)) {
      // A flood is one security event per peer per second (with the count), not one per envelope:
      // the limit protects the node's CPU and its log as well.
      peer.dropped++;
      const now = Date.now();
      if (now - peer.droppedReportedAt >= 1000) {
        this.#event(
          'rate-limited',
          hdr,
          `node ${env.from} exceeded ${this.#rate} messages/s: ${peer.dropped} envelope(s) dropped`,
        );
        peer.dropped = 0;
        peer.droppedReportedAt = now;
      }
      return;
    }
    const r = this.#record(env.sessionId);
    let seen = r.seen.get(env.from);
    if (!seen) {
      seen = new Set();
      r.seen.set(env.from, seen);
    }
    if (seen.has(env.seq)) {
      this.#event('replay', hdr, `envelope seq ${env.seq} from node ${env.from} was already received`);
      return;
    }
    const body = env.encrypted ? decryptBody(env, peer.receiveKey) : null;
    if (body === null) {
      this.#event(
        'decrypt-failed',
        hdr,
        env.encrypted ? 'ciphertext failed authentication' : 'unencrypted envelope',
      );
      return;
    }
    let items: BundleItem[];
    try {
      items = decodeBundle(body);
    } catch (e) {
      this.#event('malformed', hdr, (e as Error).message);
      return;
    }
    seen.add(env.seq);
    const msg: InboundBundle = {
      protocol: env.protocol,
      sessionId: env.sessionId,
      round: env.round,
      from: env.from,
      messages: items.map((it) => ({
        v: PROTOCOL_MESSAGE_VERSION,
        protocol: env.protocol,
        sessionId: env.sessionId,
        round: env.round,
        from: env.from,
        to: it.broadcast ? null : this.#identity.id,
        payload: it.payload,
      })),
    };
    if (r.inbox) {
      if (!r.inbox.participants.has(env.from)) {
        this.#event('wrong-session', hdr, `node ${env.from} is not a participant of this session`);
        return;
      }
      r.inbox.push(msg);
      return;
    }
    if (r.closedAt !== undefined) {
      // A late message of a finished session (e.g. after an abort): not an attack, just too late.
      this.#opts.logger?.debug({ ...hdr }, 'mpc: late envelope for a finished session dropped');
      return;
    }
    const control = this.#control.get(env.protocol);
    if (control) {
      try {
        control(msg);
      } catch (e) {
        this.#opts.logger?.warn({ err: e, ...hdr }, 'mpc: control handler failed');
      }
      return;
    }
    if (peer.buffered >= this.#maxBuffered) {
      this.#event('rate-limited', hdr, `too many buffered envelopes from node ${env.from}`);
      return;
    }
    peer.buffered++;
    r.pending.push({ msg, at: Date.now() });
  }

  #collect(): void {
    const now = Date.now();
    for (const [id, peer] of this.#peers) {
      // Drops after the last report of a flood that has since stopped.
      if (peer.dropped > 0 && now - peer.droppedReportedAt >= 1000) {
        this.#event(
          'rate-limited',
          { from: id },
          `node ${id} exceeded ${this.#rate} messages/s: ${peer.dropped} more envelope(s) dropped`,
        );
        peer.dropped = 0;
        peer.droppedReportedAt = now;
      }
    }
    for (const [sid, r] of this.#sessions) {
      if (r.closedAt !== undefined) {
        if (now - r.closedAt > this.#tombstoneMs) this.#sessions.delete(sid);
        continue;
      }
      if (r.inbox) continue;
      if (now - r.createdAt > this.#bufferMs) {
        for (const { msg } of r.pending) {
          const peer = this.#peers.get(msg.from);
          if (peer) peer.buffered--;
        }
        if (r.pending.length > 0) {
          const first = r.pending[0]!.msg;
          this.#event(
            'unknown-session',
            first,
            `${r.pending.length} envelope(s) for a session that never started on node ${this.#identity.id}`,
          );
        }
        // Keep the replay state as a tombstone; the session can no longer be opened here.
        r.pending = [];
        r.closedAt = now;
      }
    }
  }
}
