// The message bus contract shared by the in-process bus (`custos dev`, tests) and NATS JetStream
// (production). Two layers, as in NATS: core subjects (fire-and-forget publish/subscribe and
// request/reply, at-most-once) and durable streams (at-least-once, explicit ack, redelivery,
// de-duplication by message id). Both implementations pass test/bus-contract.test.ts.

/** A small string map; keys are case-sensitive. Keys starting with `Nats-` are reserved. */
export type BusHeaders = Record<string, string>;

/** Minimal pino-compatible logger; pass the process logger (or a child of it). */
export interface BusLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** A core message as a subscriber sees it. */
export interface BusMessage {
  readonly subject: string;
  readonly data: Uint8Array;
  readonly headers: BusHeaders;
  /** True when the sender is waiting for an answer (it used `request`). */
  readonly replyable: boolean;
  /** Answers a request. Returns false (and sends nothing) when the message is not replyable. */
  respond(data: Uint8Array, opts?: { headers?: BusHeaders }): boolean;
}

/** The answer to `request`. */
export interface BusReply {
  readonly data: Uint8Array;
  readonly headers: BusHeaders;
}

export type MessageHandler = (msg: BusMessage) => void | Promise<void>;

export interface PublishOptions {
  headers?: BusHeaders;
}

export interface SubscribeOptions {
  /** Queue group: each message goes to one member of the group instead of to all of them. */
  queue?: string;
}

export interface RequestOptions {
  /** Default 5000 ms. */
  timeoutMs?: number;
  headers?: BusHeaders;
}

export interface Subscription {
  readonly subject: string;
  /** Stops delivery; handlers already running finish on their own. Idempotent. */
  unsubscribe(): Promise<void>;
}

export interface StreamConfig {
  /** `[A-Za-z0-9_-]{1,64}`, by convention upper case: `CUSTOS_MPC`. */
  name: string;
  /** Subjects (wildcards allowed) the stream captures; must not overlap another stream's. */
  subjects: string[];
  /** `limits` (default) keeps messages until maxAge/maxMsgs; `workqueue` deletes a message once acked. */
  retention?: 'limits' | 'workqueue';
  /** Window in which a repeated msgId is dropped. Default 120 000 ms (JetStream's default). */
  duplicateWindowMs?: number;
  /** Oldest message kept. Default: unlimited. */
  maxAgeMs?: number;
  /** Most messages kept (oldest dropped first). Default: unlimited. */
  maxMsgs?: number;
  /** NATS only: `file` (default) or `memory`. */
  storage?: 'file' | 'memory';
  /** NATS only: replicas in a clustered JetStream. Default 1. */
  replicas?: number;
}

export interface ConsumerConfig {
  stream: string;
  /** `[A-Za-z0-9_-]{1,64}`. Every process consuming with the same durable shares the work. */
  durable: string;
  /** Only messages on subjects matching this (wildcards allowed). Default: everything in the stream. */
  filterSubject?: string;
  /** How long a delivered message may stay unacked before it is redelivered. Default 30 000 ms. */
  ackWaitMs?: number;
  /** Deliveries after which an unacked message is given up on. Default: unlimited (-1). */
  maxDeliver?: number;
  /**
   * Redelivery delays after an ack-wait timeout, per delivery attempt (the last one repeats);
   * overrides ackWaitMs for redelivery. Needs maxDeliver > backoffMs.length.
   */
  backoffMs?: number[];
  /** Delivered-but-unacked messages allowed at once across all consumers. Default 1000. */
  maxAckPending?: number;
}

export interface DurablePublishOptions {
  /** De-duplication id: the same id within the stream's duplicate window is stored once. */
  msgId?: string;
  headers?: BusHeaders;
  /** How long to wait for the stream's acknowledgement. Default 5000 ms. */
  timeoutMs?: number;
}

export interface PublishAck {
  stream: string;
  /** Stream sequence of the stored message (of the original one when `duplicate`). */
  seq: number;
  /** True when the msgId was seen within the duplicate window and nothing new was stored. */
  duplicate: boolean;
}

/** A message delivered by a durable consumer. Settle it with exactly one of ack / nak / term. */
export interface DurableMessage {
  readonly subject: string;
  readonly data: Uint8Array;
  readonly headers: BusHeaders;
  readonly msgId: string | undefined;
  readonly stream: string;
  /** Stream sequence number: stable across redeliveries of the same message. */
  readonly seq: number;
  /** 1 on the first delivery, 2 on the first redelivery, … */
  readonly deliveryCount: number;
  /** Done: never deliver again (resolves once the bus confirmed the ack). */
  ack(): Promise<void>;
  /** Not done: deliver again after delayMs (default: at once), unless maxDeliver is reached. */
  nak(delayMs?: number): Promise<void>;
  /** Give up on this message: never deliver it again. */
  term(): Promise<void>;
  /** Still working: restart the ack-wait timer. */
  working(): void;
}

/**
 * Handles one durable message. It must settle the message itself; if it throws, the message is
 * nak'ed (redelivered, subject to maxDeliver/backoff). Returning without settling leaves the
 * message to be redelivered after ackWait.
 */
export type DurableHandler = (msg: DurableMessage) => void | Promise<void>;

export interface ConsumeOptions {
  /** Handlers running at once in this process. Default 1 (one message at a time, in order). */
  concurrency?: number;
}

export interface ConsumerHandle {
  readonly stream: string;
  readonly durable: string;
  /** Stops fetching and waits for running handlers. Unsettled messages are redelivered later. */
  stop(): Promise<void>;
}

export interface Bus {
  readonly kind: 'memory' | 'nats';

  // Core: at-most-once, nothing stored.
  publish(subject: string, data: Uint8Array, opts?: PublishOptions): Promise<void>;
  /** Resolves once the subscription is live (messages published afterwards reach it). */
  subscribe(subject: string, handler: MessageHandler, opts?: SubscribeOptions): Promise<Subscription>;
  /** Throws BusError CUSTOS_BUS_NO_RESPONDERS (nobody subscribed) or CUSTOS_BUS_TIMEOUT. */
  request(subject: string, data: Uint8Array, opts?: RequestOptions): Promise<BusReply>;

  // Durable: at-least-once through streams and durable consumers.
  /** Creates the stream or updates its configuration; keeps its messages. */
  ensureStream(config: StreamConfig): Promise<void>;
  /** Returns false when there was no such stream. */
  deleteStream(name: string): Promise<boolean>;
  /** Creates the durable consumer or updates its configuration; keeps its position. */
  ensureConsumer(config: ConsumerConfig): Promise<void>;
  deleteConsumer(stream: string, durable: string): Promise<boolean>;
  /** Stores a message in the stream capturing `subject` (CUSTOS_BUS_NOT_FOUND if none does). */
  publishDurable(subject: string, data: Uint8Array, opts?: DurablePublishOptions): Promise<PublishAck>;
  /** Starts delivering the consumer's messages to `handler` (CUSTOS_BUS_NOT_FOUND if it does not exist). */
  consume(
    stream: string,
    durable: string,
    handler: DurableHandler,
    opts?: ConsumeOptions,
  ): Promise<ConsumerHandle>;

  /** Round trip to the bus in ms; throws BusError CUSTOS_BUS_UNAVAILABLE. For /readyz. */
  ping(opts?: { timeoutMs?: number }): Promise<number>;
  /** Stops consumers, lets in-flight handlers finish, flushes and disconnects. Idempotent. */
  close(): Promise<void>;
}
