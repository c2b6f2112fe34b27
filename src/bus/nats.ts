// The production bus: NATS core for publish/subscribe and request/reply, JetStream for durable
// streams (file storage, explicit-ack pull consumers, Nats-Msg-Id de-duplication). Mirrors the
// in-process bus in ./memory.ts; test/bus-contract.test.ts runs the same suite on both.

import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  AckPolicy,
  type ConsumerMessages,
  DeliverPolicy,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  type ConsumerConfig as JsConsumerConfig,
  type JsMsg,
  type StreamConfig as JsStreamConfig,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
} from '@nats-io/jetstream';
import {
  connect,
  credsAuthenticator,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
  type NodeConnectionOptions,
  NoRespondersError,
  nanos,
  errors as natsErrors,
  headers as natsHeaders,
  RequestError,
  TimeoutError,
} from '@nats-io/transport-node';
import { BusError, ConfigError, CustosError, redactUrl } from '../errors.ts';
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
} from './validate.ts';

const DEFAULT_DUPLICATE_WINDOW_MS = 120_000;
const DEFAULT_ACK_WAIT_MS = 30_000;
const DEFAULT_MAX_ACK_PENDING = 1000;
const DEFAULT_TIMEOUT_MS = 5000;
const MSG_ID_HEADER = 'Nats-Msg-Id';

export interface NatsBusOptions {
  /** nats://, tls://, ws:// or wss:// URL; several servers may be given comma-separated. */
  url: string;
  /** Connection name shown in NATS monitoring. Default `custos`. */
  name?: string;
  logger?: BusLogger;
  /** Default 5000 ms. */
  connectTimeoutMs?: number;
  /** TLS material (PEM files). Any of them makes TLS mandatory for this connection. */
  tls?: NatsTlsFiles;
  /** NATS `.creds` file (user JWT + NKey seed). */
  credsFile?: string;
  /** Passed through to `connect`; wins over the options above. */
  connectOptions?: Partial<NodeConnectionOptions>;
}

export interface NatsTlsFiles {
  /** CA bundle that signed the server certificate (default: the system trust store). */
  caFile?: string | undefined;
  /** Client certificate and its private key for mutual TLS; both or neither. */
  certFile?: string | undefined;
  keyFile?: string | undefined;
}

function readPem(file: string, what: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(
      'CUSTOS_CONFIG_INVALID',
      `NATS ${what} ${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? 'error'})`,
      {
        details: { file },
      },
    );
  }
  if (!text.includes('-----BEGIN ')) {
    throw new ConfigError('CUSTOS_CONFIG_INVALID', `NATS ${what} ${file}: not a PEM file`, {
      details: { file },
    });
  }
  return text;
}

/**
 * Loads and checks the TLS files before connecting, so a wrong path, a non-PEM file, an unparsable
 * certificate or a key that does not belong to the certificate is a clear ConfigError at start-up
 * instead of a TLS handshake that times out. Key material goes to the TLS stack only; no error
 * message carries it.
 */
export function loadNatsTls(files: NatsTlsFiles): { ca?: string; cert?: string; key?: string } | undefined {
  const { caFile, certFile, keyFile } = files;
  if (!caFile && !certFile && !keyFile) return undefined;
  if (Boolean(certFile) !== Boolean(keyFile)) {
    throw new ConfigError(
      'CUSTOS_CONFIG_INVALID',
      'NATS TLS: client certificate and key are set together (both or neither)',
    );
  }
  const out: { ca?: string; cert?: string; key?: string } = {};
  if (caFile) {
    out.ca = readPem(caFile, 'TLS CA file');
    try {
      new X509Certificate(out.ca);
    } catch {
      throw new ConfigError('CUSTOS_CONFIG_INVALID', `NATS TLS CA file ${caFile}: not an X.509 certificate`, {
        details: { file: caFile },
      });
    }
  }
  if (certFile && keyFile) {
    const cert = readPem(certFile, 'TLS certificate file');
    const key = readPem(keyFile, 'TLS key file');
    let x509: X509Certificate;
    try {
      x509 = new X509Certificate(cert);
    } catch {
      throw new ConfigError(
        'CUSTOS_CONFIG_INVALID',
        `NATS TLS certificate file ${certFile}: not an X.509 certificate`,
        {
          details: { file: certFile },
        },
      );
    }
    let pk: KeyObject;
    try {
      pk = createPrivateKey(key);
    } catch {
      throw new ConfigError(
        'CUSTOS_CONFIG_INVALID',
        `NATS TLS key file ${keyFile}: not an unencrypted PEM private key`,
        {
          details: { file: keyFile },
        },
      );
    }
    if (!x509.checkPrivateKey(pk)) {
      throw new ConfigError(
        'CUSTOS_CONFIG_INVALID',
        `NATS TLS key file ${keyFile} does not belong to the certificate ${certFile}`,
        {
          details: { file: keyFile },
        },
      );
    }
    out.cert = cert;
    out.key = key;
  }
  return out;
}

function loadCreds(file: string): Uint8Array {
  let data: Buffer;
  try {
    data = readFileSync(file);
  } catch (e) {
    throw new ConfigError(
      'CUSTOS_CONFIG_INVALID',
      `NATS credentials file ${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? 'error'})`,
      {
        details: { file },
      },
    );
  }
  const text = data.toString('utf8');
  if (!text.includes('BEGIN NATS USER JWT') || !text.includes('BEGIN USER NKEY SEED')) {
    throw new ConfigError(
      'CUSTOS_CONFIG_INVALID',
      `NATS credentials file ${file}: not a NATS .creds file (user JWT and NKey seed)`,
      {
        details: { file },
      },
    );
  }
  return new Uint8Array(data);
}

function toNatsHeaders(h: BusHeaders): MsgHdrs | undefined {
  const keys = Object.keys(h);
  if (keys.length === 0) return undefined;
  const out = natsHeaders();
  for (const k of keys) out.set(k, h[k]!);
  return out;
}

function fromNatsHeaders(h: MsgHdrs | undefined): BusHeaders {
  const out: BusHeaders = {};
  if (!h) return out;
  for (const k of h.keys()) {
    if (k.toLowerCase().startsWith('nats-')) continue;
    out[k] = h.get(k);
  }
  return out;
}

function isNoResponders(err: unknown): boolean {
  if (err instanceof NoRespondersError) return true;
  if (err instanceof RequestError && err.isNoResponders()) return true;
  return err instanceof Error && err.cause !== undefined && err.cause !== err && isNoResponders(err.cause);
}

function isTimeout(err: unknown): boolean {
  if (err instanceof TimeoutError) return true;
  return err instanceof Error && err.cause !== undefined && err.cause !== err && isTimeout(err.cause);
}

const NOT_FOUND_CODES = new Set([10059, 10014]); // stream not found, consumer not found

/** Maps a NATS client or JetStream API error to a BusError. */
function toBusError(err: unknown, what: string, details: Record<string, unknown>): CustosError {
  if (err instanceof CustosError) return err;
  if (err instanceof JetStreamApiError) {
    if (NOT_FOUND_CODES.has(err.code)) {
      return new BusError('CUSTOS_BUS_NOT_FOUND', `bus: ${what}: not found`, { details, cause: err });
    }
    return new BusError('CUSTOS_BUS_INVALID_ARGUMENT', `bus: ${what}: ${err.message}`, {
      details: { ...details, apiCode: err.code },
      cause: err,
    });
  }
  if (err instanceof natsErrors.InvalidArgumentError || err instanceof natsErrors.InvalidSubjectError) {
    return new BusError('CUSTOS_BUS_INVALID_ARGUMENT', `bus: ${what}: ${err.message}`, {
      details,
      cause: err,
    });
  }
  return new BusError('CUSTOS_BUS_UNAVAILABLE', `bus: ${what} failed`, { details, cause: err });
}

function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(onTimeout()), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

export class NatsBus implements Bus {
  readonly kind = 'nats' as const;
  private closing: Promise<void> | undefined;
  private readonly handles = new Set<ConsumerHandle>();

  private constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly logger: BusLogger | undefined,
  ) {
    void this.watchStatus();
  }

  /** Connects and checks that JetStream is enabled; throws BusError CUSTOS_BUS_UNAVAILABLE. */
  static async connect(opts: NatsBusOptions): Promise<NatsBus> {
    const safeUrl = opts.url
      .split(',')
      .map((u) => redactUrl(u.trim()))
      .join(',');
    const { servers, auth } = splitCredentials(opts.url);
    const tls = opts.tls ? loadNatsTls(opts.tls) : undefined;
    const authenticator = opts.credsFile ? credsAuthenticator(loadCreds(opts.credsFile)) : undefined;
    let nc: NatsConnection;
    try {
      nc = await connect({
        servers,
        ...auth,
        ...(tls ? { tls } : {}),
        ...(authenticator ? { authenticator } : {}),
        name: opts.name ?? 'custos',
        timeout: opts.connectTimeoutMs ?? DEFAULT_TIMEOUT_MS,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 1000,
        ...opts.connectOptions,
      });
    } catch (err) {
      throw new BusError('CUSTOS_BUS_UNAVAILABLE', `bus: cannot connect to NATS at ${safeUrl}`, {
        details: { url: safeUrl },
        cause: err,
      });
    }
    try {
      const jsm = await jetstreamManager(nc, { timeout: opts.connectTimeoutMs ?? DEFAULT_TIMEOUT_MS });
      return new NatsBus(nc, jetstream(nc), jsm, opts.logger);
    } catch (err) {
      await nc.close().catch(() => {});
      throw new BusError('CUSTOS_BUS_UNAVAILABLE', `bus: JetStream is not available at ${safeUrl}`, {
        details: { url: safeUrl },
        cause: err,
      });
    }
  }

  private async watchStatus(): Promise<void> {
    try {
      for await (const s of this.nc.status()) {
        switch (s.type) {
          case 'disconnect':
            this.logger?.warn({ server: s.server }, 'bus: disconnected from NATS');
            break;
          case 'reconnect':
            this.logger?.info({ server: s.server }, 'bus: reconnected to NATS');
            break;
          case 'error':
            this.logger?.error({ err: s.error }, 'bus: NATS error');
            break;
          case 'slowConsumer':
            this.logger?.warn({ sub: s.sub.getSubject() }, 'bus: slow consumer, messages dropped');
            break;
          default:
            this.logger?.debug({ type: s.type }, 'bus: NATS status');
        }
      }
    } catch {
      // the status iterator ends with the connection
    }
  }

  private assertOpen(): void {
    if (this.closing || this.nc.isClosed()) throw new BusError('CUSTOS_BUS_UNAVAILABLE', 'bus: closed');
  }

  async publish(subject: string, data: Uint8Array, opts: PublishOptions = {}): Promise<void> {
    this.assertOpen();
    checkSubject(subject, false);
    checkData(data);
    const headers = toNatsHeaders(checkHeaders(opts.headers));
    try {
      this.nc.publish(subject, data, headers ? { headers } : undefined);
    } catch (err) {
      throw toBusError(err, `publish to ${subject}`, { subject });
    }
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
    const sub = this.nc.subscribe(subject, {
      ...(opts.queue !== undefined ? { queue: opts.queue } : {}),
      callback: (err, m) => {
        if (err) {
          logger?.error({ err, subject }, 'bus: subscription failed');
          return;
        }
        void (async () => {
          try {
            await handler(wrapCore(m));
          } catch (e) {
            logger?.warn({ err: e, subject: m.subject }, 'bus: subscription handler failed');
          }
        })();
      },
    });
    try {
      await this.nc.flush(); // the server knows the subscription before we return
    } catch (err) {
      sub.unsubscribe();
      throw toBusError(err, `subscribe to ${subject}`, { subject });
    }
    return {
      subject,
      unsubscribe: async () => {
        if (!sub.isClosed()) sub.unsubscribe();
      },
    };
  }

  async request(subject: string, data: Uint8Array, opts: RequestOptions = {}): Promise<BusReply> {
    this.assertOpen();
    checkSubject(subject, false);
    checkData(data);
    const headers = toNatsHeaders(checkHeaders(opts.headers));
    const timeoutMs = checkMs(opts.timeoutMs, 'timeoutMs', DEFAULT_TIMEOUT_MS);
    try {
      const r = await this.nc.request(subject, data, { timeout: timeoutMs, ...(headers ? { headers } : {}) });
      return { data: r.data, headers: fromNatsHeaders(r.headers) };
    } catch (err) {
      if (isNoResponders(err)) {
        throw new BusError('CUSTOS_BUS_NO_RESPONDERS', `bus: no responders for ${subject}`, {
          details: { subject },
          cause: err,
        });
      }
      if (isTimeout(err)) {
        throw new BusError(
          'CUSTOS_BUS_TIMEOUT',
          `bus: request to ${subject} timed out after ${timeoutMs} ms`,
          {
            details: { subject, timeoutMs },
            cause: err,
          },
        );
      }
      throw toBusError(err, `request to ${subject}`, { subject });
    }
  }

  async ensureStream(config: StreamConfig): Promise<void> {
    this.assertOpen();
    const cfg = checkStreamConfig(config);
    const maxAge = cfg.maxAgeMs ?? 0;
    let dup = cfg.duplicateWindowMs ?? DEFAULT_DUPLICATE_WINDOW_MS;
    if (maxAge > 0) dup = Math.min(dup, maxAge);
    const update = {
      subjects: cfg.subjects,
      duplicate_window: nanos(dup),
      max_age: nanos(maxAge),
      max_msgs: cfg.maxMsgs ?? -1,
      num_replicas: cfg.replicas ?? 1,
    };
    const details = { stream: cfg.name };
    try {
      let exists = true;
      try {
        await this.jsm.streams.info(cfg.name);
      } catch (err) {
        if (err instanceof JetStreamApiError && err.code === 10059) exists = false;
        else throw err;
      }
      if (exists) {
        await this.jsm.streams.update(cfg.name, update);
      } else {
        const full: Partial<JsStreamConfig> & { name: string } = {
          ...update,
          name: cfg.name,
          retention: cfg.retention === 'workqueue' ? RetentionPolicy.Workqueue : RetentionPolicy.Limits,
          storage: cfg.storage === 'memory' ? StorageType.Memory : StorageType.File,
        };
        await this.jsm.streams.add(full);
      }
    } catch (err) {
      throw toBusError(err, `ensure stream ${cfg.name}`, details);
    }
  }

  async deleteStream(name: string): Promise<boolean> {
    this.assertOpen();
    checkName(name, 'stream');
    try {
      return await this.jsm.streams.delete(name);
    } catch (err) {
      if (err instanceof JetStreamApiError && err.code === 10059) return false;
      throw toBusError(err, `delete stream ${name}`, { stream: name });
    }
  }

  async ensureConsumer(config: ConsumerConfig): Promise<void> {
    this.assertOpen();
    const cfg = checkConsumerConfig(config);
    const update = {
      ack_wait: nanos(cfg.ackWaitMs ?? DEFAULT_ACK_WAIT_MS),
      max_deliver: cfg.maxDeliver ?? -1,
      max_ack_pending: cfg.maxAckPending ?? DEFAULT_MAX_ACK_PENDING,
      // an empty filter would end up in the API subject ($JS.API.CONSUMER.CREATE.<s>.<c>.<filter>)
      ...(cfg.filterSubject !== undefined ? { filter_subject: cfg.filterSubject } : {}),
      ...(cfg.backoffMs ? { backoff: cfg.backoffMs.map((ms) => nanos(ms)) } : {}),
    };
    const details = { stream: cfg.stream, durable: cfg.durable };
    try {
      let exists = true;
      try {
        await this.jsm.consumers.info(cfg.stream, cfg.durable);
      } catch (err) {
        if (err instanceof JetStreamApiError && err.code === 10014) exists = false;
        else throw err;
      }
      if (exists) {
        await this.jsm.consumers.update(cfg.stream, cfg.durable, update);
      } else {
        const full: Partial<JsConsumerConfig> = {
          ...update,
          durable_name: cfg.durable,
          ack_policy: AckPolicy.Explicit,
          deliver_policy: DeliverPolicy.All,
        };
        await this.jsm.consumers.add(cfg.stream, full);
      }
    } catch (err) {
      throw toBusError(err, `ensure consumer ${cfg.durable} on ${cfg.stream}`, details);
    }
  }

  async deleteConsumer(stream: string, durable: string): Promise<boolean> {
    this.assertOpen();
    checkName(stream, 'stream');
    checkName(durable, 'durable');
    try {
      return await this.jsm.consumers.delete(stream, durable);
    } catch (err) {
      if (err instanceof JetStreamApiError && err.code === 10014) return false;
      throw toBusError(err, `delete consumer ${durable} on ${stream}`, { stream, durable });
    }
  }

  async publishDurable(
    subject: string,
    data: Uint8Array,
    opts: DurablePublishOptions = {},
  ): Promise<PublishAck> {
    this.assertOpen();
    checkSubject(subject, false);
    checkData(data);
    const headers = toNatsHeaders(checkHeaders(opts.headers));
    const msgId = checkMsgId(opts.msgId);
    const timeout = checkMs(opts.timeoutMs, 'timeoutMs', DEFAULT_TIMEOUT_MS);
    try {
      const ack = await this.js.publish(subject, data, {
        timeout,
        ...(headers ? { headers } : {}),
        ...(msgId !== undefined ? { msgID: msgId } : {}),
      });
      return { stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate };
    } catch (err) {
      if (isNoResponders(err)) {
        throw new BusError('CUSTOS_BUS_NOT_FOUND', `bus: no stream captures ${subject}`, {
          details: { subject },
          cause: err,
        });
      }
      throw toBusError(err, `durable publish to ${subject}`, { subject });
    }
  }

  async consume(
    stream: string,
    durable: string,
    handler: DurableHandler,
    opts: ConsumeOptions = {},
  ): Promise<ConsumerHandle> {
    this.assertOpen();
    checkName(stream, 'stream');
    checkName(durable, 'durable');
    const concurrency = checkPositiveInt(opts.concurrency, 'concurrency', 1);
    const details = { stream, durable };
    let messages: ConsumerMessages;
    try {
      // get() checks that the consumer exists
      const consumer = await this.js.consumers.get(stream, durable);
      // Prefetch no more than we can run at once: a buffered message's ack-wait is already ticking.
      messages = await consumer.consume({ max_messages: concurrency });
    } catch (err) {
      throw toBusError(err, `consume ${durable} on ${stream}`, details);
    }
    const logger = this.logger;
    void (async () => {
      try {
        for await (const s of messages.status()) {
          logger?.debug({ ...details, status: s.type }, 'bus: consumer status');
        }
      } catch {
        // ends with the consumer
      }
    })();
    const inflight = new Set<Promise<void>>();
    const loop = (async () => {
      try {
        for await (const m of messages) {
          while (inflight.size >= concurrency) await Promise.race(inflight);
          const p: Promise<void> = this.runDurable(m, handler).finally(() => inflight.delete(p));
          inflight.add(p);
        }
      } catch (err) {
        logger?.error({ err, ...details }, 'bus: consumer stopped with an error');
      }
    })();
    let stopping: Promise<void> | undefined;
    const handle: ConsumerHandle = {
      stream,
      durable,
      stop: () => {
        stopping ??= (async () => {
          this.handles.delete(handle);
          messages.stop();
          await loop;
          await Promise.all(inflight);
        })();
        return stopping;
      },
    };
    this.handles.add(handle);
    return handle;
  }

  private async runDurable(m: JsMsg, handler: DurableHandler): Promise<void> {
    let settled = false;
    const flush = async () => {
      try {
        await this.nc.flush();
      } catch (err) {
        throw toBusError(err, 'settle message', { seq: m.seq });
      }
    };
    const msgId = m.headers?.get(MSG_ID_HEADER) || undefined;
    const msg: DurableMessage = {
      subject: m.subject,
      data: m.data,
      headers: fromNatsHeaders(m.headers),
      msgId,
      stream: m.info.stream,
      seq: m.seq,
      deliveryCount: m.info.deliveryCount,
      ack: async () => {
        if (settled) return;
        settled = true;
        try {
          await m.ackAck();
        } catch (err) {
          throw toBusError(err, 'ack', { stream: m.info.stream, seq: m.seq });
        }
      },
      nak: async (delayMs?: number) => {
        if (delayMs !== undefined && (!Number.isInteger(delayMs) || delayMs < 0)) {
          invalidArgument('nak delay must be a non-negative integer (ms)');
        }
        if (settled) return;
        settled = true;
        m.nak(delayMs || undefined);
        await flush();
      },
      term: async () => {
        if (settled) return;
        settled = true;
        m.term();
        await flush();
      },
      working: () => {
        if (!settled) m.working();
      },
    };
    try {
      await handler(msg);
    } catch (err) {
      this.logger?.warn(
        { err, stream: m.info.stream, consumer: m.info.consumer, seq: m.seq },
        'bus: durable handler failed; message nak’ed',
      );
      if (!settled) await msg.nak().catch(() => {});
    }
  }

  async ping(opts: { timeoutMs?: number } = {}): Promise<number> {
    this.assertOpen();
    const timeoutMs = checkMs(opts.timeoutMs, 'timeoutMs', 2000);
    const unavailable = (cause?: unknown) =>
      new BusError('CUSTOS_BUS_UNAVAILABLE', 'bus: NATS did not answer', {
        details: { timeoutMs },
        ...(cause !== undefined ? { cause } : {}),
      });
    try {
      const [rtt] = await withTimeout(
        Promise.all([this.nc.rtt(), this.jsm.getAccountInfo()]),
        timeoutMs,
        () => unavailable(),
      );
      return rtt;
    } catch (err) {
      if (err instanceof CustosError) throw err;
      throw unavailable(err);
    }
  }

  async close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.all([...this.handles].map((h) => h.stop()));
      try {
        await this.nc.drain();
      } catch {
        await this.nc.close().catch(() => {});
      }
    })();
    return this.closing;
  }
}

/**
 * The NATS client does not read credentials from server URLs: take `user:pass@` (or a lone
 * `token@`) out of the URL(s) and pass them as options.
 */
function splitCredentials(url: string): {
  servers: string[];
  auth: { user?: string; pass?: string; token?: string };
} {
  let auth: { user?: string; pass?: string; token?: string } = {};
  const servers = url.split(',').map((raw) => {
    const u = raw.trim();
    try {
      const parsed = new URL(u);
      if (!parsed.username && !parsed.password) return u;
      const user = decodeURIComponent(parsed.username);
      const pass = decodeURIComponent(parsed.password);
      auth = pass ? { user, pass } : { token: user };
      parsed.username = '';
      parsed.password = '';
      return parsed.toString().replace(/\/$/, '');
    } catch {
      return u;
    }
  });
  return { servers, auth };
}

function wrapCore(m: Msg): BusMessage {
  let replied = false;
  return {
    subject: m.subject,
    data: m.data,
    headers: fromNatsHeaders(m.headers),
    replyable: Boolean(m.reply),
    respond(data, o = {}) {
      if (!m.reply || replied) return false;
      checkData(data);
      const headers = toNatsHeaders(checkHeaders(o.headers));
      replied = true;
      return m.respond(data, headers ? { headers } : undefined);
    },
  };
}

export function connectNatsBus(opts: NatsBusOptions): Promise<NatsBus> {
  return NatsBus.connect(opts);
}
