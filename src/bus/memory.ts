// The in-process bus: the embedded default of `custos dev` and of tests. It mirrors the NATS
// JetStream semantics the rest of the code relies on (subject wildcards, queue groups, no-responder
// detection, durable consumers with explicit ack, ack-wait redelivery, nak delay, backoff,
// max-deliver, msgId de-duplication) so code written against it behaves the same on NATS.
// Several MemoryBus instances attached to one MemoryBusHub see each other, like clients of one
// NATS server. Nothing survives the process.
import { BusError } from '../errors.ts';
import type {
  Bus,
  BusHeaders,
  BusLogger,
  BusMessage,
  BusReply,
  ConsumeOptions,
  ConsumerConfig,
  ConsumerHandle,
  DurableHandler,
  DurableMessage,
  DurablePublishOptions,
  MessageHandler,
  PublishAck,
  PublishOptions,
  RequestOptions,
  StreamConfig,
  SubscribeOptions,
  Subscription,
} from './types.ts';
import {
  checkConsumerConfig,
  checkData,
  checkHeaders,
  checkMs,
  checkMsgId,
  checkName,
  checkPositiveInt,
  checkStreamConfig,
  checkSubject,
  invalidArgument,
  subjectMatches,
  subjectsOverlap,
} from './validate.ts';

const DEFAULT_DUPLICATE_WINDOW_MS = 120_000;
const DEFAULT_ACK_WAIT_MS = 30_000;
const DEFAULT_MAX_ACK_PENDING = 1000;
const DEFAULT_REQUEST_TIMEOUT_MS = 5000;

interface Envelope {
  subject: string;
  data: Uint8Array;
  headers: BusHeaders;
  reply: ((data: Uint8Array, headers: BusHeaders) => void) | undefined;
}

interface CoreSub {
  pattern: string;
  queue: string | undefined;
  active: boolean;
  deliver(env: Envelope): void;
}

interface StoredMsg {
  seq: number;
  subject: string;
  data: Uint8Array;
  headers: BusHeaders;
  msgId: string | undefined;
  at: number;
}

interface PendingEntry {
  deliveries: number;
  /** true while a delivery is out (waiting for a settle or the ack-wait timer). */
  out: boolean;
  timer: NodeJS.Timeout | undefined;
}

interface MemHandle {
  handler: DurableHandler;
  concurrency: number;
  inflight: number;
  stopped: boolean;
  idle: (() => void)[];
  logger: BusLogger | undefined;
}

class MemStream {
  readonly msgs = new Map<number, StoredMsg>();
  readonly dedupe = new Map<string, { seq: number; at: number }>();
  readonly consumers = new Map<string, MemConsumer>();
  lastSeq = 0;
  constructor(
    public config: Required<Pick<StreamConfig, 'name' | 'subjects' | 'retention'>> & StreamConfig,
  ) {}

  get duplicateWindowMs(): number {
    const w = this.config.duplicateWindowMs ?? DEFAULT_DUPLICATE_WINDOW_MS;
    return this.config.maxAgeMs !== undefined ? Math.min(w, this.config.maxAgeMs) : w;
  }

  captures(subject: string): boolean {
    return this.config.subjects.some((p) => subjectMatches(p, subject));
  }

  /** Applies maxAge / maxMsgs. */
  enforceLimits(now: number): void {
    const { maxAgeMs, maxMsgs } = this.config;
    for (const [seq, m] of this.msgs) {
      const tooOld = maxAgeMs !== undefined && now - m.at > maxAgeMs;
      const tooMany = maxMsgs !== undefined && this.msgs.size > maxMsgs;
      if (!tooOld && !tooMany) break;
      this.msgs.delete(seq);
    }
    const window = this.duplicateWindowMs;
    for (const [id, d] of this.dedupe) {
      if (now - d.at < window) break;
      this.dedupe.delete(id);
    }
  }

  store(subject: string, data: Uint8Array, headers: BusHeaders, msgId: string | undefined): PublishAck {
    const now = Date.now();
    this.enforceLimits(now);
    if (msgId !== undefined) {
      const seen = this.dedupe.get(msgId);
      if (seen) return { stream: this.config.name, seq: seen.seq, duplicate: true };
    }
    const seq = ++this.lastSeq;
    this.msgs.set(seq, { seq, subject, data, headers, msgId, at: now });
    if (msgId !== undefined) this.dedupe.set(msgId, { seq, at: now });
    this.enforceLimits(now);
    for (const c of this.consumers.values()) c.pump();
    return { stream: this.config.name, seq, duplicate: false };
  }

  destroy(): void {
    for (const c of this.consumers.values()) c.destroy();
    this.consumers.clear();
    this.msgs.clear();
  }
}

class MemConsumer {
  private nextSeq = 1;
  private readonly pending = new Map<number, PendingEntry>();
  private ready: number[] = [];
  readonly handles: MemHandle[] = [];
  private rr = 0;
  private deleted = false;

  constructor(
    readonly stream: MemStream,
    public config: ConsumerConfig,
  ) {}

  private get ackWaitMs(): number {
    return this.config.ackWaitMs ?? DEFAULT_ACK_WAIT_MS;
  }

  private redeliveryDelay(deliveries: number): number {
    const b = this.config.backoffMs;
    if (b && b.length > 0) return b[Math.min(deliveries - 1, b.length - 1)]!;
    return this.ackWaitMs;
  }

  private exhausted(entry: PendingEntry): boolean {
    const max = this.config.maxDeliver;
    return max !== undefined && max > 0 && entry.deliveries >= max;
  }

  private giveUp(seq: number, entry: PendingEntry, why: string, logger: BusLogger | undefined): void {
    clearTimeout(entry.timer);
    this.pending.delete(seq);
    logger?.warn(
      { stream: this.stream.config.name, durable: this.config.durable, seq, deliveries: entry.deliveries },
      `bus: message dropped by consumer (${why})`,
    );
  }

  private makeReady(seq: number): void {
    // keep redeliveries in stream order
    let i = this.ready.length;
    while (i > 0 && this.ready[i - 1]! > seq) i--;
    this.ready.splice(i, 0, seq);
  }

  private nextDeliverable(): number | undefined {
    while (this.ready.length > 0) {
      const seq = this.ready.shift()!;
      if (this.stream.msgs.has(seq)) return seq;
      const entry = this.pending.get(seq);
      if (entry) {
        clearTimeout(entry.timer);
        this.pending.delete(seq);
      }
    }
    const filter = this.config.filterSubject;
    while (this.nextSeq <= this.stream.lastSeq) {
      const seq = this.nextSeq++;
      const m = this.stream.msgs.get(seq);
      if (m && (filter === undefined || subjectMatches(filter, m.subject))) {
        this.pending.set(seq, { deliveries: 0, out: false, timer: undefined });
        return seq;
      }
    }
    return undefined;
  }

  private pickHandle(): MemHandle | undefined {
    const n = this.handles.length;
    for (let i = 0; i < n; i++) {
      const h = this.handles[(this.rr + i) % n]!;
      if (!h.stopped && h.inflight < h.concurrency) {
        this.rr = (this.rr + i + 1) % n;
        return h;
      }
    }
    return undefined;
  }

  pump(): void {
    if (this.deleted) return;
    const maxAckPending = this.config.maxAckPending ?? DEFAULT_MAX_ACK_PENDING;
    this.stream.enforceLimits(Date.now());
    for (;;) {
      if (this.pending.size - this.ready.length >= maxAckPending) return;
      const handle = this.pickHandle();
      if (!handle) return;
      const seq = this.nextDeliverable();
      if (seq === undefined) return;
      this.deliver(handle, seq);
    }
  }

  private armTimer(seq: number, entry: PendingEntry, ms: number, logger: BusLogger | undefined): void {
    clearTimeout(entry.timer);
    entry.timer = setTimeout(() => {
      entry.timer = undefined;
      if (this.pending.get(seq) !== entry) return;
      entry.out = false;
      if (this.exhausted(entry)) this.giveUp(seq, entry, 'max deliveries reached', logger);
      else this.makeReady(seq);
      this.pump();
    }, ms);
    entry.timer.unref();
  }

  private deliver(handle: MemHandle, seq: number): void {
    const entry = this.pending.get(seq)!;
    const m = this.stream.msgs.get(seq)!;
    entry.deliveries++;
    entry.out = true;
    this.armTimer(seq, entry, this.redeliveryDelay(entry.deliveries), handle.logger);
    let settled = false;
    const settle = (fn: (e: PendingEntry) => void) => {
      if (settled) return;
      settled = true;
      const e = this.pending.get(seq);
      if (e) fn(e);
      this.pump();
    };
    const msg: DurableMessage = {
      subject: m.subject,
      data: m.data.slice(),
      headers: { ...m.headers },
      msgId: m.msgId,
      stream: this.stream.config.name,
      seq,
      deliveryCount: entry.deliveries,
      ack: async () =>
        settle((e) => {
          clearTimeout(e.timer);
          this.pending.delete(seq);
          if (this.stream.config.retention === 'workqueue') this.stream.msgs.delete(seq);
        }),
      nak: async (delayMs?: number) => {
        if (delayMs !== undefined && (!Number.isInteger(delayMs) || delayMs < 0)) {
          invalidArgument('nak delay must be a non-negative integer (ms)');
        }
        settle((e) => {
          clearTimeout(e.timer);
          e.out = false;
          if (this.exhausted(e)) return this.giveUp(seq, e, 'max deliveries reached', handle.logger);
          if (!delayMs) return this.makeReady(seq);
          e.timer = setTimeout(() => {
            e.timer = undefined;
            if (this.pending.get(seq) !== e) return;
            this.makeReady(seq);
            this.pump();
          }, delayMs);
          e.timer.unref();
        });
      },
      term: async () =>
        settle((e) => {
          clearTimeout(e.timer);
          this.pending.delete(seq);
        }),
      working: () => {
        const e = this.pending.get(seq);
        if (!settled && e?.out) this.armTimer(seq, e, this.ackWaitMs, handle.logger);
      },
    };
    handle.inflight++;
    setImmediate(async () => {
      try {
        await handle.handler(msg);
      } catch (err) {
        handle.logger?.warn(
          { err, stream: this.stream.config.name, durable: this.config.durable, seq },
          'bus: durable handler failed; message nak’ed',
        );
        if (!settled) await msg.nak();
      } finally {
        handle.inflight--;
        if (handle.inflight === 0) for (const f of handle.idle.splice(0)) f();
        this.pump();
      }
    });
  }

  destroy(): void {
    this.deleted = true;
    for (const e of this.pending.values()) clearTimeout(e.timer);
    this.pending.clear();
    this.ready = [];
    for (const h of this.handles) h.stopped = true;
    this.handles.length = 0;
  }
}

/** The shared "server" of in-process buses. One per process in `custos dev`. */
export class MemoryBusHub {
  readonly subs = new Set<CoreSub>();
  readonly streams = new Map<string, MemStream>();

  matching(subject: string): CoreSub[] {
    const all = [...this.subs].filter((s) => s.active && subjectMatches(s.pattern, subject));
    const plain = all.filter((s) => s.queue === undefined);
    const groups = new Map<string, CoreSub[]>();
    for (const s of all) {
      if (s.queue === undefined) continue;
      const g = groups.get(s.queue) ?? [];
      g.push(s);
      groups.set(s.queue, g);
    }
    for (const g of groups.values()) plain.push(g[Math.floor(Math.random() * g.length)]!);
    return plain;
  }

  dispatch(env: Envelope): number {
    const targets = this.matching(env.subject);
    for (const t of targets) t.deliver(env);
    return targets.length;
  }

  streamFor(subject: string): MemStream | undefined {
    for (const s of this.streams.values()) if (s.captures(subject)) return s;
    return undefined;
  }
}

export interface MemoryBusOptions {
  /** Share a hub between buses to let them talk (several roles in one process). Default: a new hub. */
  hub?: MemoryBusHub;
  logger?: BusLogger;
}

export class MemoryBus implements Bus {
  readonly kind = 'memory' as const;
  readonly hub: MemoryBusHub;
  private readonly logger: BusLogger | undefined;
  private closed = false;
  private readonly subs = new Set<CoreSub>();
  private readonly handles = new Set<{ stop(): Promise<void> }>();

  constructor(opts: MemoryBusOptions = {}) {
    this.hub = opts.hub ?? new MemoryBusHub();
    this.logger = opts.logger;
  }

  private assertOpen(): void {
    if (this.closed) throw new BusError('CUSTOS_BUS_UNAVAILABLE', 'bus: closed');
  }

  async publish(subject: string, data: Uint8Array, opts: PublishOptions = {}): Promise<void> {
    this.assertOpen();
    checkSubject(subject, false);
    checkData(data);
    const headers = { ...checkHeaders(opts.headers) };
    this.hub.dispatch({ subject, data: data.slice(), headers, reply: undefined });
  }

  async subscribe(
    subject: string,
    handler: MessageHandler,
    opts: SubscribeOptions = {},
  ): Promise<Subscription> {
    this.assertOpen();
    checkSubject(subject, true);
    if (opts.queue !== undefined) checkName(opts.queue, 'queue');
    const logger = this.logger;
    const sub: CoreSub = {
      pattern: subject,
      queue: opts.queue,
      active: true,
      deliver(env) {
        setImmediate(async () => {
          if (!sub.active) return;
          let replied = false;
          const msg: BusMessage = {
            subject: env.subject,
            data: env.data.slice(),
            headers: { ...env.headers },
            replyable: env.reply !== undefined,
            respond(data, o = {}) {
              if (!env.reply || replied) return false;
              checkData(data);
              const h = { ...checkHeaders(o.headers) };
              replied = true;
              env.reply(data.slice(), h);
              return true;
            },
          };
          try {
            await handler(msg);
          } catch (err) {
            logger?.warn({ err, subject: env.subject }, 'bus: subscription handler failed');
          }
        });
      },
    };
    this.hub.subs.add(sub);
    this.subs.add(sub);
    return {
      subject,
      unsubscribe: async () => {
        sub.active = false;
        this.hub.subs.delete(sub);
        this.subs.delete(sub);
      },
    };
  }

  async request(subject: string, data: Uint8Array, opts: RequestOptions = {}): Promise<BusReply> {
    this.assertOpen();
    checkSubject(subject, false);
    checkData(data);
    const headers = { ...checkHeaders(opts.headers) };
    const timeoutMs = checkMs(opts.timeoutMs, 'timeoutMs', DEFAULT_REQUEST_TIMEOUT_MS);
    if (this.hub.matching(subject).length === 0) {
      throw new BusError('CUSTOS_BUS_NO_RESPONDERS', `bus: no responders for ${subject}`, {
        details: { subject },
      });
    }
    return new Promise<BusReply>((resolve, reject) => {
      let done = false;
      const timer = setTimeout(() => {
        done = true;
        reject(
          new BusError('CUSTOS_BUS_TIMEOUT', `bus: request to ${subject} timed out after ${timeoutMs} ms`, {
            details: { subject, timeoutMs },
          }),
        );
      }, timeoutMs);
      this.hub.dispatch({
        subject,
        data: data.slice(),
        headers,
        reply: (d, h) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          resolve({ data: d, headers: h });
        },
      });
    });
  }

  async ensureStream(config: StreamConfig): Promise<void> {
    this.assertOpen();
    const cfg = checkStreamConfig(config);
    for (const other of this.hub.streams.values()) {
      if (other.config.name === cfg.name) continue;
      for (const a of cfg.subjects) {
        for (const b of other.config.subjects) {
          if (subjectsOverlap(a, b)) {
            invalidArgument(`stream ${cfg.name}: subject ${a} overlaps ${b} of stream ${other.config.name}`);
          }
        }
      }
    }
    const existing = this.hub.streams.get(cfg.name);
    if (!existing) {
      this.hub.streams.set(cfg.name, new MemStream(cfg));
      return;
    }
    if (existing.config.retention !== cfg.retention) {
      invalidArgument(`stream ${cfg.name}: retention cannot be changed`);
    }
    existing.config = cfg;
    existing.enforceLimits(Date.now());
  }

  async deleteStream(name: string): Promise<boolean> {
    this.assertOpen();
    checkName(name, 'stream');
    const s = this.hub.streams.get(name);
    if (!s) return false;
    s.destroy();
    this.hub.streams.delete(name);
    return true;
  }

  async ensureConsumer(config: ConsumerConfig): Promise<void> {
    this.assertOpen();
    const cfg = checkConsumerConfig(config);
    const stream = this.stream(cfg.stream);
    if (cfg.filterSubject !== undefined) {
      const f = cfg.filterSubject;
      if (!stream.config.subjects.some((s) => subjectsOverlap(s, f))) {
        invalidArgument(`consumer ${cfg.durable}: filter ${f} is outside stream ${cfg.stream}`);
      }
    }
    if (stream.config.retention === 'workqueue') {
      for (const c of stream.consumers.values()) {
        if (c.config.durable === cfg.durable) continue;
        const a = c.config.filterSubject ?? '>';
        const b = cfg.filterSubject ?? '>';
        if (subjectsOverlap(a, b)) {
          invalidArgument(
            `consumer ${cfg.durable}: work-queue stream ${cfg.stream} already has ${c.config.durable}`,
          );
        }
      }
    }
    const existing = stream.consumers.get(cfg.durable);
    if (existing) {
      existing.config = cfg;
      existing.pump();
    } else {
      stream.consumers.set(cfg.durable, new MemConsumer(stream, cfg));
    }
  }

  async deleteConsumer(streamName: string, durable: string): Promise<boolean> {
    this.assertOpen();
    checkName(durable, 'durable');
    const stream = this.stream(streamName);
    const c = stream.consumers.get(durable);
    if (!c) return false;
    c.destroy();
    stream.consumers.delete(durable);
    return true;
  }

  async publishDurable(
    subject: string,
    data: Uint8Array,
    opts: DurablePublishOptions = {},
  ): Promise<PublishAck> {
    this.assertOpen();
    checkSubject(subject, false);
    checkData(data);
    const headers = { ...checkHeaders(opts.headers) };
    const msgId = checkMsgId(opts.msgId);
    checkMs(opts.timeoutMs, 'timeoutMs', DEFAULT_REQUEST_TIMEOUT_MS);
    const stream = this.hub.streamFor(subject);
    if (!stream) {
      throw new BusError('CUSTOS_BUS_NOT_FOUND', `bus: no stream captures ${subject}`, {
        details: { subject },
      });
    }
    const copy = data.slice();
    // Like JetStream, a durable publish is also an ordinary publish on the subject.
    this.hub.dispatch({ subject, data: copy, headers, reply: undefined });
    return stream.store(subject, copy, headers, msgId);
  }

  async consume(
    streamName: string,
    durable: string,
    handler: DurableHandler,
    opts: ConsumeOptions = {},
  ): Promise<ConsumerHandle> {
    this.assertOpen();
    checkName(durable, 'durable');
    const concurrency = checkPositiveInt(opts.concurrency, 'concurrency', 1);
    const stream = this.stream(streamName);
    const consumer = stream.consumers.get(durable);
    if (!consumer) {
      throw new BusError(
        'CUSTOS_BUS_NOT_FOUND',
        `bus: consumer ${durable} of stream ${streamName} not found`,
        {
          details: { stream: streamName, durable },
        },
      );
    }
    const h: MemHandle = { handler, concurrency, inflight: 0, stopped: false, idle: [], logger: this.logger };
    consumer.handles.push(h);
    const handle: ConsumerHandle = {
      stream: streamName,
      durable,
      stop: async () => {
        h.stopped = true;
        const i = consumer.handles.indexOf(h);
        if (i >= 0) consumer.handles.splice(i, 1);
        this.handles.delete(handle);
        if (h.inflight > 0) await new Promise<void>((r) => h.idle.push(r));
      },
    };
    this.handles.add(handle);
    consumer.pump();
    return handle;
  }

  async ping(): Promise<number> {
    this.assertOpen();
    return 0;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.subs) {
      s.active = false;
      this.hub.subs.delete(s);
    }
    this.subs.clear();
    await Promise.all([...this.handles].map((h) => h.stop()));
  }

  private stream(name: string): MemStream {
    checkName(name, 'stream');
    const s = this.hub.streams.get(name);
    if (!s) {
      throw new BusError('CUSTOS_BUS_NOT_FOUND', `bus: stream ${name} not found`, {
        details: { stream: name },
      });
    }
    return s;
  }
}

export function createMemoryBus(opts: MemoryBusOptions = {}): MemoryBus {
  return new MemoryBus(opts);
}
