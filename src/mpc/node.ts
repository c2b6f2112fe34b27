// An MPC node: one share per key, its own checks, its own log. It answers signed control-plane
// requests on `custos.mpc.node.<id>.req` (keygen, sign, refresh, reshare, commit, unlock, ping), runs
// the scheme's ProtocolParty over the authenticated channel, keeps ECDSA presignature pools full in
// the background, and publishes signed heartbeats on `custos.mpc.hb`.
//
// Per request: control-plane signature → expiry → idempotency by request id (a duplicate delivery
// joins the first one's session and gets the same reply) → key state (exists, generation, not
// locked) → authorize chain → protocol → signed reply with the result or a typed abort
// { code, culprit, reason, round, protocol, cheating }. A cheating abort locks the key on this node.
import { createHash, randomBytes } from 'node:crypto';
import type { Bus, Subscription } from '../bus/index.ts';
import type {
  KeyShare,
  Presignature,
  ProtocolParty,
  PublicKeyInfo,
  SchemeName,
  SchemeSignature,
  ThresholdScheme,
} from '../crypto/threshold.ts';
import { PROTOCOL_MESSAGE_VERSION, ThresholdAbort } from '../crypto/threshold.ts';
import { CustosError, MpcError } from '../errors.ts';
import { type AuthorizeRequest, type Authorizer, runAuthorizers } from './authorize.ts';
import {
  Channel,
  type ChannelLogger,
  type InboundBundle,
  type PeerInfo,
  type SessionInbox,
} from './channel.ts';
import type { ClusterFile } from './cluster.ts';
import { SecurityEvents } from './events.ts';
import type { NodeIdentity } from './identity.ts';
import { getScheme } from './schemes.ts';
import type { SecretKeyring } from './secure-file.ts';
import { runParty, SessionDeclined, SessionTimeout } from './session.ts';
import { type KeyLock, type KeyMeta, ShareStore, signersKey } from './share-store.ts';
import {
  type AbortInfo,
  type ControlRequest,
  type ControlRequestOf,
  type Heartbeat,
  heartbeatSubject,
  type NodeReply,
  openSigned,
  requestSchema,
  requestSubject,
  signBody,
} from './wire.ts';

export interface NodeLogger extends ChannelLogger {
  info(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface MpcNodeOptions {
  identity: NodeIdentity;
  keyring: SecretKeyring;
  dataDir: string;
  cluster: ClusterFile;
  bus: Bus;
  logger?: NodeLogger;
  authorizers?: Authorizer[];
  /** Presignatures kept ready per key and signer set. Default: cluster.pool.size. */
  poolSize?: number;
  /**
   * Refill starts when a pool drops below this fraction of poolSize, then fills it up again (so a
   * burst of signatures is not slowed by presigning alongside it). Default 0.5.
   */
  poolLowWater?: number;
  /** Presign sessions this node leads at once per signer set. Default 2. */
  presignConcurrency?: number;
  /** Default: cluster.timeouts.heartbeatMs. */
  heartbeatMs?: number;
  /** Clock skew tolerated on request timestamps. Default 60 s. */
  clockSkewMs?: number;
  events?: SecurityEvents;
  /** Channel tuning (buffering of early envelopes, replay-state lifetime). */
  channel?: { bufferMs?: number; tombstoneMs?: number };
  /** Tests only: tamper with this node's outgoing protocol messages (a cheating node). */
  testHooks?: {
    outgoing?: (
      m: import('../crypto/threshold.ts').ProtocolMessage,
    ) => import('../crypto/threshold.ts').ProtocolMessage | null;
  };
}

interface LoadedKey {
  meta: KeyMeta;
  scheme: ThresholdScheme;
  share: KeyShare;
  lock: KeyLock | null;
  /** signer set → presignature ids ready (oldest first), current generation only */
  pool: Map<string, string[]>;
  /** signer sets to keep pools for → last used (ms) */
  poolTargets: Map<string, number>;
  presignInFlight: Map<string, number>;
  /** signer sets currently refilling (between the low-water mark and full) */
  refilling: Set<string>;
}

const noopLogger: NodeLogger = { debug() {}, info() {}, warn() {}, error() {} };
const PRESIGN_INIT = 'custos/presign-init';
const PRESIGN_ACK = 'custos/presign-ack';
/** PRESIGN_ACK with payload [0]: the follower will not take part (payload [1]: stored its half). */
const isPresignDecline = (b: InboundBundle): boolean =>
  b.protocol === PRESIGN_ACK && b.messages[0]?.payload.length === 1 && b.messages[0].payload[0] === 0;
const SIGN_SETUP = 'custos/sign-setup';
const REQUEST_CACHE_MS = 10 * 60_000;
const POOL_TARGET_IDLE_MS = 10 * 60_000;
/**
 * Background presigning yields to signing: while sign requests arrived within this window, a pool
 * is refilled only once it is below POOL_CRITICAL of its size (so a burst drains the pool at full
 * speed and sustained load still refills it at full concurrency).
 */
const SIGN_QUIET_MS = 50;
const POOL_CRITICAL = 0.25;

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const r2 = (x: number): number => Math.round(x * 100) / 100;
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));

function subSession(sessionId: string, label: string): string {
  return createHash('sha256').update(`custos/mpc/subsession/v1\0${label}\0${sessionId}`).digest('hex');
}

function nodeError(code: CustosError['code'], message: string, extra: Partial<AbortInfo> = {}): MpcError {
  return new MpcError(code as never, message, {
    details: { culprit: null, reason: null, round: null, protocol: null, cheating: false, ...extra },
  });
}

export class MpcNode {
  readonly id: number;
  readonly events: SecurityEvents;
  #o: MpcNodeOptions;
  readonly #log: NodeLogger;
  readonly #store: ShareStore;
  readonly #channel: Channel;
  readonly #keys = new Map<string, LoadedKey>();
  readonly #requests = new Map<string, { hash: string; at: number; reply: Promise<NodeReply> }>();
  readonly #peerSeen = new Map<number, number>();
  readonly #authorizers: Authorizer[];
  #controlPlaneKey: Uint8Array;
  readonly #poolSize: number;
  readonly #presignConcurrency: number;
  readonly #heartbeatMs: number;
  #subs: Subscription[] = [];
  #timers: NodeJS.Timeout[] = [];
  #stopped = false;
  readonly #startedAt = Date.now();
  #inflight = new Set<Promise<unknown>>();
  /** When the last sign request arrived (background presigning yields to signing). */
  #lastSignAt = 0;

  constructor(opts: MpcNodeOptions) {
    this.#o = opts;
    this.id = opts.identity.id;
    this.#log = opts.logger ?? noopLogger;
    this.events = opts.events ?? new SecurityEvents(`node-${this.id}`, this.#log);
    this.#store = new ShareStore(opts.dataDir, opts.keyring);
    this.#authorizers = [...(opts.authorizers ?? [])];
    this.#controlPlaneKey = unhex(opts.cluster.controlPlane.publicKey);
    this.#poolSize = opts.poolSize ?? opts.cluster.pool.size;
    this.#presignConcurrency = opts.presignConcurrency ?? 2;
    this.#heartbeatMs = opts.heartbeatMs ?? opts.cluster.timeouts.heartbeatMs;
    const me = opts.cluster.nodes.find((n) => n.id === this.id);
    if (!me) throw new MpcError('CUSTOS_MPC_NODE_STATE', `node ${this.id} is not in the cluster file`);
    if (me.publicKey !== hex(opts.identity.publicKey) || me.dhPublicKey !== hex(opts.identity.dhPublicKey)) {
      throw new MpcError(
        'CUSTOS_MPC_NODE_STATE',
        `node ${this.id}: the cluster file lists other public keys than this node's identity`,
      );
    }
    this.#channel = new Channel({
      bus: opts.bus,
      identity: opts.identity,
      peers: peersOf(opts.cluster),
      events: this.events,
      logger: this.#log,
      maxMessageBytes: opts.cluster.limits.maxMessageBytes,
      messagesPerSecond: opts.cluster.limits.messagesPerSecond,
      ...(opts.channel ?? {}),
      ...(opts.cluster.namespace ? { namespace: opts.cluster.namespace } : {}),
      ...(opts.testHooks?.outgoing ? { outgoingHook: opts.testHooks.outgoing } : {}),
    });
    this.#channel.onControl(PRESIGN_INIT, (b) => this.#onPresignInit(b));
  }

  /**
   * Applies an edited cluster file without a restart (`custos mpc-node start` does it on SIGHUP):
   * peers added or removed, a peer's new identity or X25519 key (its pair keys are re-derived at
   * once; envelopes under the old keys fail from then on), a rotated control-plane key. This
   * node's own entry and the subject namespace must stay the same; pool size, limits and timeouts
   * take effect at the next restart.
   */
  reloadCluster(cluster: ClusterFile): {
    added: number[];
    removed: number[];
    rekeyed: number[];
    controlPlane: boolean;
  } {
    const me = cluster.nodes.find((n) => n.id === this.id);
    if (
      !me ||
      me.publicKey !== hex(this.#o.identity.publicKey) ||
      me.dhPublicKey !== hex(this.#o.identity.dhPublicKey)
    ) {
      throw new MpcError(
        'CUSTOS_MPC_NODE_STATE',
        `node ${this.id}: the new cluster file does not list this node with its own public keys; nothing was changed`,
      );
    }
    if ((cluster.namespace ?? '') !== (this.#o.cluster.namespace ?? '')) {
      throw new MpcError(
        'CUSTOS_MPC_NODE_STATE',
        `node ${this.id}: the cluster namespace cannot change without a restart`,
      );
    }
    const before = new Map(this.#o.cluster.nodes.map((n) => [n.id, n]));
    const after = new Map(cluster.nodes.map((n) => [n.id, n]));
    const added = [...after.keys()].filter((id) => !before.has(id));
    const removed = [...before.keys()].filter((id) => !after.has(id));
    const rekeyed = [...after.values()]
      .filter((n) => {
        const b = before.get(n.id);
        return b !== undefined && (b.publicKey !== n.publicKey || b.dhPublicKey !== n.dhPublicKey);
      })
      .map((n) => n.id);
    const controlPlane = cluster.controlPlane.publicKey !== this.#o.cluster.controlPlane.publicKey;
    this.#channel.setPeers(peersOf(cluster));
    this.#controlPlaneKey = unhex(cluster.controlPlane.publicKey);
    this.#o = { ...this.#o, cluster };
    for (const id of [...removed, ...rekeyed]) this.#peerSeen.delete(id);
    const changes = { added, removed, rekeyed, controlPlane };
    this.#log.info({ node: this.id, ...changes }, 'mpc node: cluster file reloaded');
    return changes;
  }

  /** Adds an authorizer to the chain (e.g. approval-signature checks). */
  addAuthorizer(a: Authorizer): void {
    this.#authorizers.push(a);
  }

  async start(): Promise<void> {
    for (const s of await this.#store.loadAll()) {
      try {
        await this.#loadKey(s.meta, s.share);
      } catch (e) {
        this.#log.error({ err: e, keyId: s.meta.keyId }, 'mpc node: cannot load key share');
      }
    }
    await this.#channel.start();
    const bus = this.#o.bus;
    this.#subs.push(
      await bus.subscribe(requestSubject(this.id, this.#o.cluster.namespace), async (m) => {
        const reply = await this.handleRequest(m.data);
        m.respond(signBody('reply', reply, this.#o.identity, this.id));
      }),
    );
    this.#subs.push(
      await bus.subscribe(heartbeatSubject(this.#o.cluster.namespace), (m) => this.#onHeartbeat(m.data)),
    );
    const hb = setInterval(() => void this.#heartbeat(), this.#heartbeatMs);
    hb.unref();
    const pool = setInterval(() => this.#refillPools(), 100);
    pool.unref();
    const gc = setInterval(() => this.#gcRequests(), 30_000);
    gc.unref();
    this.#timers.push(hb, pool, gc);
    void this.#heartbeat();
    this.#log.info({ node: this.id, keys: this.#keys.size }, 'mpc node started');
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const t of this.#timers) clearInterval(t);
    for (const s of this.#subs) await s.unsubscribe();
    await this.#channel.close();
    await Promise.allSettled([...this.#inflight]);
    for (const k of this.#keys.values()) (k.share as { destroy?: () => void }).destroy?.();
    this.#keys.clear();
  }

  /** Keys held here (public data only). */
  keys(): (KeyMeta & { locked: boolean; pools: Record<string, number> })[] {
    return [...this.#keys.values()].map((k) => ({
      ...k.meta,
      locked: k.lock !== null,
      pools: Object.fromEntries([...k.pool].map(([s, ids]) => [s, ids.length])),
    }));
  }

  get store(): ShareStore {
    return this.#store;
  }

  async #loadKey(meta: KeyMeta, shareBytes: Uint8Array): Promise<LoadedKey> {
    const scheme = await getScheme(meta.scheme);
    const share = scheme.importShareFromStorage(shareBytes);
    shareBytes.fill(0);
    const k: LoadedKey = {
      meta,
      scheme,
      share,
      lock: this.#store.readLock(meta.keyId),
      pool: new Map(),
      poolTargets: new Map(),
      presignInFlight: new Map(),
      refilling: new Set(),
    };
    if (scheme.presign) {
      for (const [set, ids] of this.#store.listPresigs(meta.keyId)) {
        if (set.startsWith(`g${meta.generation}-`)) k.pool.set(set.slice(`g${meta.generation}-`.length), ids);
      }
      const dflt = signersKey([...meta.parties].sort((a, b) => a - b).slice(0, meta.threshold));
      k.poolTargets.set(dflt, Date.now());
    }
    this.#keys.set(meta.keyId, k);
    return k;
  }

  // Requests ---------------------------------------------------------------------------------------

  /** Verifies and handles one wire request; always returns a reply (never throws). */
  async handleRequest(data: Uint8Array): Promise<NodeReply> {
    const opened = openSigned('request', data, (n) => (n === undefined ? this.#controlPlaneKey : undefined));
    if ('error' in opened) {
      this.events.emitEvent({ kind: 'bad-request', detail: `control request rejected: ${opened.error}` });
      return {
        ok: false,
        requestId: '',
        error: abortInfo(nodeError('CUSTOS_MPC_UNAUTHORIZED', `request ${opened.error}`)),
      };
    }
    const parsed = requestSchema.safeParse(opened.body);
    if (!parsed.success) {
      const i = parsed.error.issues[0]!;
      return {
        ok: false,
        requestId: String((opened.body as { requestId?: unknown })?.requestId ?? ''),
        error: abortInfo(nodeError('CUSTOS_MPC_BAD_REQUEST', `request ${i.path.join('.')}: ${i.message}`)),
      };
    }
    const req = parsed.data;
    const now = Date.now();
    const skew = this.#o.clockSkewMs ?? 60_000;
    if (req.expiresAt < now || req.issuedAt > now + skew) {
      this.events.emitEvent({
        kind: 'bad-request',
        sessionId: req.sessionId,
        detail: `request ${req.requestId} expired or from the future`,
      });
      return {
        ok: false,
        requestId: req.requestId,
        error: abortInfo(nodeError('CUSTOS_MPC_BAD_REQUEST', 'request expired')),
      };
    }
    // Idempotency: a retransmission has the same signed body; the same id with another body is refused.
    const hash = createHash('sha256').update(JSON.stringify(opened.body)).digest('hex');
    const prev = this.#requests.get(req.requestId);
    if (prev) {
      if (prev.hash === hash) return prev.reply;
      this.events.emitEvent({
        kind: 'bad-request',
        detail: `request id ${req.requestId} reused with another body`,
      });
      return {
        ok: false,
        requestId: req.requestId,
        error: abortInfo(nodeError('CUSTOS_MPC_BAD_REQUEST', 'request id reused with a different request')),
      };
    }
    const reply = this.#dispatch(req).then(
      (result): NodeReply => ({ ok: true, requestId: req.requestId, result }),
      (e): NodeReply => ({ ok: false, requestId: req.requestId, error: this.#toAbort(e, req) }),
    );
    this.#requests.set(req.requestId, { hash, at: now, reply });
    this.#track(reply);
    return reply;
  }

  #track<T>(p: Promise<T>): void {
    this.#inflight.add(p);
    void p.finally(() => this.#inflight.delete(p));
  }

  #gcRequests(): void {
    const now = Date.now();
    for (const [id, r] of this.#requests) if (now - r.at > REQUEST_CACHE_MS) this.#requests.delete(id);
  }

  #toAbort(e: unknown, req: ControlRequest): AbortInfo {
    if (e instanceof ThresholdAbort) {
      const info: AbortInfo = {
        code: 'CUSTOS_MPC_ABORT',
        message: e.message,
        culprit: e.culprit,
        reason: e.reason,
        round: e.round,
        protocol: e.protocol,
        cheating: e.isCheating,
      };
      if (e.isCheating && 'keyId' in req) this.#lockKey(req.keyId, e, req.sessionId);
      return info;
    }
    if (e instanceof SessionTimeout) {
      return {
        code: 'CUSTOS_MPC_TIMEOUT',
        message: `node ${this.id}: ${e.message}`,
        culprit: null,
        reason: 'missing-message',
        round: e.round,
        protocol: e.protocol,
        cheating: false,
        missing: [...e.missing],
      };
    }
    if (!(e instanceof CustosError)) this.#log.error({ err: e, type: req.type }, 'mpc node: request failed');
    return abortInfo(e);
  }

  #lockKey(keyId: string, e: ThresholdAbort, sessionId: string): void {
    const k = this.#keys.get(keyId);
    const lock: KeyLock = {
      lockedAt: new Date().toISOString(),
      reason: `${e.protocol}/round${e.round}: ${e.reason}: ${e.message}`,
      culprit: e.culprit,
      sessionId,
    };
    try {
      this.#store.lock(keyId, lock);
    } catch (err) {
      this.#log.error({ err, keyId }, 'mpc node: cannot persist key lock');
    }
    if (k) k.lock = lock;
    this.events.emitEvent({
      kind: 'cheating',
      keyId,
      sessionId,
      protocol: e.protocol,
      round: e.round,
      ...(e.culprit !== null ? { peer: e.culprit } : {}),
      detail: e.message,
    });
    this.events.emitEvent({
      kind: 'key-locked',
      keyId,
      ...(e.culprit !== null ? { peer: e.culprit } : {}),
      detail: lock.reason,
    });
  }

  async #authorize(req: AuthorizeRequest): Promise<void> {
    const r = await runAuthorizers(this.#authorizers, req);
    if (!r.ok) {
      this.events.emitEvent({
        kind: 'unauthorized',
        keyId: req.keyId,
        sessionId: req.sessionId,
        detail: r.reason,
      });
      throw nodeError('CUSTOS_MPC_UNAUTHORIZED', `node ${this.id}: ${r.reason}`);
    }
  }

  #key(keyId: string, opts: { allowLocked?: boolean } = {}): LoadedKey {
    const k = this.#keys.get(keyId);
    if (!k) throw nodeError('CUSTOS_MPC_KEY_NOT_FOUND', `node ${this.id} holds no share of key ${keyId}`);
    if (k.lock && !opts.allowLocked) {
      throw nodeError(
        'CUSTOS_MPC_KEY_LOCKED',
        `key ${keyId} is locked on node ${this.id}: ${k.lock.reason}`,
        {
          culprit: k.lock.culprit,
        },
      );
    }
    return k;
  }

  async #dispatch(req: ControlRequest): Promise<Record<string, unknown>> {
    switch (req.type) {
      case 'ping':
        return { node: this.id, keys: this.keys().map((k) => k.keyId) };
      case 'keygen':
        return this.#keygen(req);
      case 'sign':
        return this.#sign(req);
      case 'refresh':
        return this.#refresh(req);
      case 'reshare':
        return this.#reshare(req);
      case 'commit':
        return this.#commit(req);
      case 'unlock':
        return this.#unlock(req);
    }
  }

  #checkParties(parties: readonly number[], what: string): number[] {
    const sorted = [...new Set(parties)].sort((a, b) => a - b);
    if (sorted.length !== parties.length)
      throw nodeError('CUSTOS_MPC_BAD_REQUEST', `${what}: duplicate party`);
    for (const p of sorted) {
      if (p !== this.id && !this.#channel.hasPeer(p)) {
        throw nodeError('CUSTOS_MPC_BAD_REQUEST', `${what}: node ${p} is not in the cluster`);
      }
    }
    return sorted;
  }

  async #run<Out>(
    sessionId: string,
    participants: readonly number[],
    party: ProtocolParty<Out>,
    deadline: number,
  ): Promise<Out> {
    let inbox: SessionInbox;
    try {
      inbox = this.#channel.openSession(sessionId, participants);
    } catch (e) {
      party.destroy();
      throw nodeError('CUSTOS_MPC_BAD_REQUEST', (e as Error).message);
    }
    try {
      return await runParty(
        {
          channel: this.#channel,
          inbox,
          participants,
          events: this.events,
          deadline,
          peerAlive: (id) => this.#presumedAlive(id),
        },
        party,
      );
    } catch (e) {
      party.destroy();
      throw e;
    } finally {
      this.#channel.closeSession(sessionId);
    }
  }

  async #keygen(req: ControlRequestOf<'keygen'>): Promise<Record<string, unknown>> {
    const scheme = await getScheme(req.scheme);
    const parties = this.#checkParties(req.parties, 'keygen');
    if (!parties.includes(this.id))
      throw nodeError('CUSTOS_MPC_BAD_REQUEST', `node ${this.id} is not in the committee`);
    if (this.#keys.has(req.keyId) || this.#store.keyIds().includes(req.keyId)) {
      throw nodeError('CUSTOS_MPC_BAD_REQUEST', `key ${req.keyId} already exists on node ${this.id}`);
    }
    await this.#authorize({
      type: 'keygen',
      requestId: req.requestId,
      sessionId: req.sessionId,
      nodeId: this.id,
      keyId: req.keyId,
    });
    let party: ProtocolParty<KeyShare>;
    try {
      party = scheme.dkg({ sessionId: req.sessionId, partyId: this.id, parties, threshold: req.threshold });
    } catch (e) {
      throw nodeError('CUSTOS_MPC_BAD_REQUEST', `keygen: ${(e as Error).message}`);
    }
    const share = await this.#run(req.sessionId, parties, party, Date.now() + req.timeoutMs);
    const meta: KeyMeta = {
      keyId: req.keyId,
      scheme: scheme.name,
      threshold: share.info.threshold,
      parties: [...share.info.parties],
      publicKey: hex(share.info.publicKey),
      chainCode: hex(share.info.chainCode),
      allowRawSigning: req.allowRawSigning,
      generation: 0,
      createdAt: new Date().toISOString(),
    };
    const bytes = scheme.exportShareForStorage(share);
    await this.#store.saveShare({ meta, share: bytes });
    await this.#loadKey(meta, bytes);
    const publicShares = publicSharesOf(share);
    (share as { destroy?: () => void }).destroy?.();
    this.#log.info(
      { keyId: req.keyId, scheme: scheme.name, t: meta.threshold, n: meta.parties.length },
      'mpc node: key created',
    );
    return {
      keyId: meta.keyId,
      scheme: meta.scheme,
      threshold: meta.threshold,
      parties: meta.parties,
      publicKey: meta.publicKey,
      chainCode: meta.chainCode,
      ...(publicShares ? { publicShares } : {}),
    };
  }

  async #sign(req: ControlRequestOf<'sign'>): Promise<Record<string, unknown>> {
    const t0 = performance.now();
    this.#lastSignAt = Date.now();
    const k = this.#key(req.keyId);
    if (k.meta.generation !== req.generation) {
      throw nodeError(
        'CUSTOS_MPC_NODE_STATE',
        `key ${req.keyId}: node ${this.id} is at generation ${k.meta.generation}, request is for ${req.generation}`,
      );
    }
    const signers = this.#checkParties(req.signers, 'sign');
    if (!signers.includes(this.id))
      throw nodeError('CUSTOS_MPC_BAD_REQUEST', `node ${this.id} is not a signer`);
    if (signers.length !== k.meta.threshold || !signers.every((s) => k.meta.parties.includes(s))) {
      throw nodeError(
        'CUSTOS_MPC_BAD_REQUEST',
        `signers must be ${k.meta.threshold} members of the committee`,
      );
    }
    const message = unhex(req.message);
    if (k.meta.scheme === 'ecdsa-secp256k1' && message.length !== 32) {
      throw nodeError('CUSTOS_MPC_BAD_REQUEST', 'ECDSA signs a 32-byte digest');
    }
    await this.#authorize({
      type: 'sign',
      requestId: req.requestId,
      sessionId: req.sessionId,
      nodeId: this.id,
      keyId: req.keyId,
      key: k.meta,
      message,
      signers,
      ...(req.derivationPath !== undefined ? { derivationPath: req.derivationPath } : {}),
      ...(req.authorization !== undefined ? { authorization: req.authorization } : {}),
    });
    const deadline = Date.now() + req.timeoutMs;
    const tAuth = performance.now();
    const set = signersKey(signers);
    const scheme = k.scheme;
    let presignature: Presignature | undefined;
    let fromPool = false;
    let tSetup: number | undefined;
    if (scheme.presign) {
      k.poolTargets.set(set, Date.now());
      const leader = signers[0]!;
      // Opened now so the leader's setup message and a fast peer's first round are buffered here.
      const setupInbox = this.#channel.openSession(subSession(req.sessionId, 'setup'), signers);
      try {
        let presigId: string | null = null;
        if (leader === this.id) {
          // Announce first, then take (each signer deletes its half durably before using it), so
          // both signers do their disk work at the same time.
          presigId = k.pool.get(set)?.shift() ?? null;
          await this.#channel.send(
            [
              {
                v: PROTOCOL_MESSAGE_VERSION,
                protocol: SIGN_SETUP,
                sessionId: setupInbox.sessionId,
                round: 0,
                from: this.id,
                to: null,
                payload: new TextEncoder().encode(JSON.stringify({ presigId })),
              },
            ],
            signers,
          );
          if (presigId !== null) {
            presignature = await this.#takeFromPool(k, set, presigId);
            if (!presignature) {
              throw new ThresholdAbort({
                protocol: SIGN_SETUP,
                round: 0,
                culprit: null,
                reason: 'missing-message',
                message: `node ${this.id} lost presignature ${presigId.slice(0, 16)}…`,
              });
            }
          }
        } else {
          let b: InboundBundle | null = null;
          while (!b && Date.now() < deadline && this.#presumedAlive(leader) && !setupInbox.closed) {
            b = await setupInbox.take(
              (x) => x.protocol === SIGN_SETUP && x.from === leader,
              Math.min(deadline, Date.now() + 250),
            );
          }
          if (!b) throw new SessionTimeout(SIGN_SETUP, 0, [leader]);
          let setup: { presigId: string | null };
          try {
            setup = JSON.parse(new TextDecoder().decode(b.messages[0]!.payload)) as {
              presigId: string | null;
            };
          } catch {
            throw new ThresholdAbort({
              protocol: SIGN_SETUP,
              round: 0,
              culprit: leader,
              reason: 'bad-message',
              message: 'bad sign setup',
            });
          }
          presigId = setup.presigId;
          if (presigId !== null) {
            presignature = await this.#takeFromPool(k, set, presigId);
            if (!presignature) {
              throw new ThresholdAbort({
                protocol: SIGN_SETUP,
                round: 0,
                culprit: null,
                reason: 'missing-message',
                message: `node ${this.id} has no presignature ${presigId.slice(0, 16)}… for signers ${set}`,
              });
            }
          }
        }
        fromPool = presigId !== null;
        tSetup = performance.now();
      } finally {
        this.#channel.closeSession(setupInbox.sessionId);
      }
      if (!presignature) {
        // Cold pool: presign and sign in the same request.
        const psid = subSession(req.sessionId, 'presign');
        presignature = await this.#run(
          psid,
          signers,
          scheme.presign({ sessionId: psid, share: k.share, signers }),
          deadline,
        );
      }
    }
    const tPresig = performance.now();
    const party = scheme.sign({
      sessionId: req.sessionId,
      share: k.share,
      signers,
      message,
      ...(req.derivationPath !== undefined ? { derivationPath: req.derivationPath } : {}),
      ...(presignature ? { presignature } : {}),
    });
    // The scheme verifies the combined signature before releasing it; the coordinator checks it again.
    const sig: SchemeSignature = await this.#run(req.sessionId, signers, party, deadline);
    return {
      keyId: req.keyId,
      signature: hex(sig.signature),
      ...(sig.recovery !== undefined ? { recovery: sig.recovery } : {}),
      signingPublicKey: hex(sig.signingPublicKey),
      signers,
      presignature: scheme.presign ? (fromPool ? 'pool' : 'inline') : 'none',
      // Where this node spent the request (ms): checks, presignature hand-over, inline presign, protocol.
      phasesMs: {
        checks: r2(tAuth - t0),
        setup: r2((tSetup ?? tAuth) - tAuth),
        presign: r2(tPresig - (tSetup ?? tAuth)),
        sign: r2(performance.now() - tPresig),
      },
    };
  }

  /** Takes the oldest (or the given) presignature: persisted as used before it is returned. */
  async #takeFromPool(k: LoadedKey, set: string, id?: string): Promise<Presignature | undefined> {
    const scheme = k.scheme;
    if (!scheme.importPresignatureFromStorage) return undefined;
    const ids = k.pool.get(set) ?? [];
    for (;;) {
      let pick: string | undefined;
      if (id !== undefined) {
        const i = ids.indexOf(id);
        if (i >= 0) ids.splice(i, 1);
        pick = id;
      } else {
        pick = ids.shift();
      }
      if (pick === undefined) return undefined;
      const bytes = await this.#store.takePresig(k.meta.keyId, `g${k.meta.generation}-${set}`, pick);
      if (bytes) {
        try {
          return scheme.importPresignatureFromStorage(bytes);
        } finally {
          bytes.fill(0);
        }
      }
      if (id !== undefined) return undefined;
    }
  }

  // Presignature pools ------------------------------------------------------------------------------

  #onHeartbeat(data: Uint8Array): void {
    const peers = this.#o.cluster.nodes;
    const opened = openSigned('heartbeat', data, (n) => {
      const p = peers.find((x) => x.id === n);
      return p ? unhex(p.publicKey) : undefined;
    });
    if ('error' in opened) {
      this.events.emitEvent({
        kind: 'bad-signature',
        ...(opened.node !== undefined ? { peer: opened.node } : {}),
        detail: `heartbeat: ${opened.error}`,
      });
      return;
    }
    if (opened.node !== undefined) this.#peerSeen.set(opened.node, Date.now());
  }

  /** For a running session: a peer is given up on only once its heartbeats stopped (or never came). */
  #presumedAlive(id: number): boolean {
    if (id === this.id) return true;
    const window = this.#heartbeatMs * 3;
    // Our own heartbeats are late too: this process (its event loop or its bus link) stalled, so the
    // peer's silence proves nothing; keep waiting until the session's deadline.
    const self = this.#peerSeen.get(this.id);
    if (self !== undefined && Date.now() - self >= window) return true;
    const t = this.#peerSeen.get(id);
    return t === undefined ? Date.now() - this.#startedAt < window : Date.now() - t < window;
  }

  #peerLive(id: number): boolean {
    if (id === this.id) return true;
    const t = this.#peerSeen.get(id);
    return t !== undefined && Date.now() - t < this.#heartbeatMs * 3;
  }

  #refillPools(): void {
    if (this.#stopped || this.#poolSize <= 0) return;
    const now = Date.now();
    for (const k of this.#keys.values()) {
      if (!k.scheme.presign || k.lock) continue;
      for (const [set, lastUsed] of k.poolTargets) {
        const signers = set.split('-').map(Number);
        if (signers[0] !== this.id) continue;
        if (
          now - lastUsed > POOL_TARGET_IDLE_MS &&
          signers.join('-') !== signersKey(k.meta.parties.slice(0, k.meta.threshold))
        ) {
          k.poolTargets.delete(set);
          continue;
        }
        if (!signers.every((s) => this.#peerLive(s))) continue;
        const ready = k.pool.get(set)?.length ?? 0;
        let inflight = k.presignInFlight.get(set) ?? 0;
        if (ready + inflight >= this.#poolSize) {
          k.refilling.delete(set);
          continue;
        }
        if (
          ready >= Math.max(1, Math.floor(this.#poolSize * POOL_CRITICAL)) &&
          now - this.#lastSignAt < SIGN_QUIET_MS
        )
          continue;
        const lowWater = Math.floor(this.#poolSize * (this.#o.poolLowWater ?? this.#o.cluster.pool.lowWater));
        if (!k.refilling.has(set) && ready >= lowWater && ready > 0) continue;
        k.refilling.add(set);
        while (inflight < this.#presignConcurrency && ready + inflight < this.#poolSize) {
          inflight++;
          k.presignInFlight.set(set, inflight);
          const p = this.#leadPresign(k, signers).finally(() => {
            k.presignInFlight.set(set, (k.presignInFlight.get(set) ?? 1) - 1);
          });
          this.#track(p);
        }
      }
    }
  }

  async #leadPresign(k: LoadedKey, signers: number[]): Promise<void> {
    const sessionId = randomBytes(32).toString('hex');
    const generation = k.meta.generation;
    const deadline = Date.now() + this.#o.cluster.timeouts.signMs;
    let inbox: SessionInbox;
    try {
      inbox = this.#channel.openSession(sessionId, signers);
    } catch {
      return;
    }
    const presign = k.scheme.presign!;
    let party: ProtocolParty<Presignature> | undefined;
    try {
      await this.#channel.send(
        [
          {
            v: PROTOCOL_MESSAGE_VERSION,
            protocol: PRESIGN_INIT,
            sessionId,
            round: 0,
            from: this.id,
            to: null,
            payload: new TextEncoder().encode(JSON.stringify({ keyId: k.meta.keyId, generation, signers })),
          },
        ],
        signers,
      );
      party = presign({ sessionId, share: k.share, signers });
      const p = await runParty(
        {
          channel: this.#channel,
          inbox,
          participants: signers,
          events: this.events,
          deadline,
          peerAlive: (id) => this.#presumedAlive(id),
          // A follower that cannot take part (key not loaded yet, pool full) says so at once
          // instead of leaving this session to time out.
          declinedBy: () => inbox.messages.find(isPresignDecline)?.from ?? null,
        },
        party,
      );
      // Usable only once every signer confirmed it stored its half.
      for (const s of signers) {
        if (s === this.id) continue;
        const ack = await inbox.take((b) => b.protocol === PRESIGN_ACK && b.from === s, deadline);
        if (!ack) throw new SessionTimeout(PRESIGN_ACK, 0, [s]);
        if (isPresignDecline(ack)) throw new SessionDeclined(PRESIGN_ACK, s);
      }
      await this.#storePresig(k, generation, signers, p);
    } catch (e) {
      party?.destroy();
      this.#presignFailed(k, e, sessionId);
    } finally {
      this.#channel.closeSession(sessionId);
    }
  }

  #presignFailed(k: LoadedKey, e: unknown, sessionId: string): void {
    if (e instanceof ThresholdAbort && e.isCheating) this.#lockKey(k.meta.keyId, e, sessionId);
    else if (e instanceof SessionDeclined) {
      this.#log.debug(
        { keyId: k.meta.keyId, by: e.by },
        'mpc node: presign declined; the pool refills later',
      );
    } else this.#log.warn({ err: e, keyId: k.meta.keyId }, 'mpc node: presign session failed');
  }

  async #storePresig(k: LoadedKey, generation: number, signers: number[], p: Presignature): Promise<void> {
    const set = signersKey(signers);
    const bytes = k.scheme.exportPresignatureForStorage!(p);
    await this.#store.savePresig(k.meta.keyId, `g${generation}-${set}`, p.id, bytes);
    if (k.meta.generation !== generation || this.#keys.get(k.meta.keyId) !== k) return;
    let ids = k.pool.get(set);
    if (!ids) {
      ids = [];
      k.pool.set(set, ids);
    }
    ids.push(p.id);
  }

  #onPresignInit(b: InboundBundle): void {
    let init: { keyId: string; generation: number; signers: number[] };
    try {
      init = JSON.parse(new TextDecoder().decode(b.messages[0]!.payload)) as typeof init;
    } catch {
      this.events.emitEvent({
        kind: 'malformed',
        peer: b.from,
        sessionId: b.sessionId,
        detail: 'bad presign invitation',
      });
      return;
    }
    const k = this.#keys.get(init.keyId);
    const signers = Array.isArray(init.signers) ? [...init.signers].sort((x, y) => x - y) : [];
    const set = signersKey(signers);
    const refuse = (why: string): void => {
      this.#log.warn({ from: b.from, keyId: init.keyId, why }, 'mpc node: presign invitation refused');
      // Tell the leader, so its session ends now rather than at the signing timeout.
      this.#channel
        .send(
          [
            {
              v: PROTOCOL_MESSAGE_VERSION,
              protocol: PRESIGN_ACK,
              sessionId: b.sessionId,
              round: 0,
              from: this.id,
              to: b.from,
              payload: new Uint8Array([0]),
            },
          ],
          [b.from],
        )
        .catch(() => undefined);
    };
    if (!k?.scheme.presign || k.lock) {
      refuse('no usable key');
      return;
    }
    if (k.meta.generation !== init.generation) {
      refuse('generation mismatch');
      return;
    }
    if (
      signers[0] !== b.from ||
      !signers.includes(this.id) ||
      signers.length !== k.meta.threshold ||
      !signers.every((s) => k.meta.parties.includes(s))
    ) {
      this.events.emitEvent({
        kind: 'wrong-session',
        peer: b.from,
        sessionId: b.sessionId,
        keyId: init.keyId,
        detail: 'presign invitation from a node that does not lead this signer set',
      });
      return;
    }
    if ((k.pool.get(set)?.length ?? 0) >= this.#poolSize * 2 + this.#presignConcurrency) {
      refuse('pool full');
      return;
    }
    k.poolTargets.set(set, Date.now());
    const sessionId = b.sessionId;
    const generation = k.meta.generation;
    let inbox: SessionInbox;
    try {
      inbox = this.#channel.openSession(sessionId, signers);
    } catch {
      return;
    }
    const party = k.scheme.presign({ sessionId, share: k.share, signers });
    const deadline = Date.now() + this.#o.cluster.timeouts.signMs;
    const run = (async () => {
      try {
        const p = await runParty(
          {
            channel: this.#channel,
            inbox,
            participants: signers,
            events: this.events,
            deadline,
            peerAlive: (id) => this.#presumedAlive(id),
          },
          party,
        );
        await this.#storePresig(k, generation, signers, p);
        await this.#channel.send(
          [
            {
              v: PROTOCOL_MESSAGE_VERSION,
              protocol: PRESIGN_ACK,
              sessionId,
              round: 0,
              from: this.id,
              to: b.from,
              payload: new Uint8Array([1]),
            },
          ],
          signers,
        );
      } catch (e) {
        party.destroy();
        this.#presignFailed(k, e, sessionId);
      } finally {
        this.#channel.closeSession(sessionId);
      }
    })();
    this.#track(run);
  }

  // Refresh, reshare, commit, unlock -----------------------------------------------------------------

  async #refresh(req: ControlRequestOf<'refresh'>): Promise<Record<string, unknown>> {
    const k = this.#key(req.keyId);
    if (k.meta.generation !== req.generation)
      throw nodeError('CUSTOS_MPC_NODE_STATE', `key ${req.keyId}: generation mismatch`);
    await this.#authorize({
      type: 'refresh',
      requestId: req.requestId,
      sessionId: req.sessionId,
      nodeId: this.id,
      keyId: req.keyId,
      key: k.meta,
    });
    const party = k.scheme.refresh({ sessionId: req.sessionId, share: k.share });
    const share = await this.#run(req.sessionId, k.meta.parties, party, Date.now() + req.timeoutMs);
    if (hex(share.info.publicKey) !== k.meta.publicKey) {
      throw new ThresholdAbort({
        protocol: party.protocol,
        round: 0,
        culprit: null,
        reason: 'bad-state',
        message: 'refresh changed the public key',
      });
    }
    const meta: KeyMeta = { ...k.meta, generation: k.meta.generation + 1 };
    await this.#store.saveShare({ meta, share: k.scheme.exportShareForStorage(share) }, { pending: true });
    const publicShares = publicSharesOf(share);
    (share as { destroy?: () => void }).destroy?.();
    return {
      keyId: req.keyId,
      publicKey: meta.publicKey,
      generation: meta.generation,
      ...(publicShares ? { publicShares } : {}),
    };
  }

  async #reshare(req: ControlRequestOf<'reshare'>): Promise<Record<string, unknown>> {
    const scheme = await getScheme(req.scheme);
    const existing = this.#keys.get(req.keyId);
    if (existing && existing.meta.generation !== req.generation) {
      throw nodeError('CUSTOS_MPC_NODE_STATE', `key ${req.keyId}: generation mismatch`);
    }
    const oldParties = this.#checkParties(req.oldParties, 'reshare.oldParties');
    const newParties = this.#checkParties(req.newParties, 'reshare.newParties');
    const all = [...new Set([...oldParties, ...newParties])].sort((a, b) => a - b);
    if (!all.includes(this.id)) throw nodeError('CUSTOS_MPC_BAD_REQUEST', `node ${this.id} takes no part`);
    const info: PublicKeyInfo & { publicShares?: Map<number, Uint8Array> } = {
      scheme: scheme.name as SchemeName,
      threshold: req.info.threshold,
      parties: req.info.parties,
      publicKey: unhex(req.info.publicKey),
      chainCode: unhex(req.info.chainCode),
      // DKLs23: a node without an old share learns the old public shares from the request (public data).
      ...(req.info.publicShares
        ? {
            publicShares: new Map(
              Object.entries(req.info.publicShares).map(([k, v]) => [Number(k), unhex(v)]),
            ),
          }
        : {}),
    };
    if (existing && hex(existing.share.info.publicKey) !== req.info.publicKey) {
      throw nodeError('CUSTOS_MPC_BAD_REQUEST', 'reshare: public key does not match the stored key');
    }
    await this.#authorize({
      type: 'reshare',
      requestId: req.requestId,
      sessionId: req.sessionId,
      nodeId: this.id,
      keyId: req.keyId,
      ...(existing ? { key: existing.meta } : {}),
    });
    const party = scheme.reshare({
      sessionId: req.sessionId,
      partyId: this.id,
      ...(existing && oldParties.includes(this.id) ? { share: existing.share } : {}),
      info,
      oldParties,
      newParties,
      newThreshold: req.newThreshold,
    });
    const share = await this.#run(req.sessionId, all, party, Date.now() + req.timeoutMs);
    const generation = req.generation + 1;
    if (newParties.includes(this.id)) {
      const meta: KeyMeta = {
        keyId: req.keyId,
        scheme: scheme.name,
        threshold: req.newThreshold,
        parties: newParties,
        publicKey: req.info.publicKey,
        chainCode: req.info.chainCode,
        allowRawSigning: existing?.meta.allowRawSigning ?? req.info.allowRawSigning,
        generation,
        createdAt: existing?.meta.createdAt ?? new Date().toISOString(),
      };
      await this.#store.saveShare({ meta, share: scheme.exportShareForStorage(share) }, { pending: true });
    }
    const publicShares = newParties.includes(this.id) ? publicSharesOf(share) : undefined;
    (share as { destroy?: () => void }).destroy?.();
    return {
      keyId: req.keyId,
      publicKey: req.info.publicKey,
      generation,
      member: newParties.includes(this.id),
      ...(publicShares ? { publicShares } : {}),
    };
  }

  async #commit(req: ControlRequestOf<'commit'>): Promise<Record<string, unknown>> {
    const pending = this.#store.hasPending(req.keyId)
      ? await this.#store.loadShare(req.keyId, { pending: true })
      : null;
    if (req.action === 'discard') {
      if (pending) this.#store.discardPending(req.keyId);
      return { keyId: req.keyId, discarded: pending !== null };
    }
    const existing = this.#keys.get(req.keyId);
    if (!pending) {
      // Idempotent: already committed, or this node left the committee.
      if (existing && existing.meta.generation === req.generation)
        return { keyId: req.keyId, generation: req.generation };
      if (existing && existing.meta.generation === req.generation - 1) {
        this.#store.deleteKey(req.keyId);
        this.#keys.delete(req.keyId);
        (existing.share as { destroy?: () => void }).destroy?.();
        return { keyId: req.keyId, removed: true };
      }
      throw nodeError('CUSTOS_MPC_NODE_STATE', `key ${req.keyId}: nothing to commit`);
    }
    if (pending.meta.generation !== req.generation) {
      throw nodeError(
        'CUSTOS_MPC_NODE_STATE',
        `key ${req.keyId}: pending generation ${pending.meta.generation}, not ${req.generation}`,
      );
    }
    this.#store.commitPending(req.keyId);
    if (existing) (existing.share as { destroy?: () => void }).destroy?.();
    this.#keys.delete(req.keyId);
    // A new share means new shares everywhere: a lock from the old committee no longer applies.
    this.#store.unlock(req.keyId);
    await this.#loadKey(pending.meta, pending.share);
    return { keyId: req.keyId, generation: pending.meta.generation };
  }

  async #unlock(req: ControlRequestOf<'unlock'>): Promise<Record<string, unknown>> {
    const k = this.#key(req.keyId, { allowLocked: true });
    await this.#authorize({
      type: 'unlock',
      requestId: req.requestId,
      sessionId: req.sessionId,
      nodeId: this.id,
      keyId: req.keyId,
      key: k.meta,
    });
    this.#store.unlock(req.keyId);
    k.lock = null;
    this.#log.warn({ keyId: req.keyId }, 'mpc node: key unlocked by the control plane');
    return { keyId: req.keyId, unlocked: true };
  }

  // Heartbeats ---------------------------------------------------------------------------------------

  heartbeat(): Heartbeat {
    return {
      node: this.id,
      at: Date.now(),
      startedAt: this.#startedAt,
      keys: [...this.#keys.values()].map((k) => ({
        keyId: k.meta.keyId,
        scheme: k.meta.scheme,
        threshold: k.meta.threshold,
        parties: k.meta.parties,
        publicKey: k.meta.publicKey,
        generation: k.meta.generation,
        locked: k.lock !== null,
      })),
      pools: Object.fromEntries(
        [...this.#keys.values()]
          .filter((k) => k.pool.size > 0)
          .map((k) => [k.meta.keyId, Object.fromEntries([...k.pool].map(([s, ids]) => [s, ids.length]))]),
      ),
    };
  }

  async #heartbeat(): Promise<void> {
    if (this.#stopped) return;
    try {
      await this.#o.bus.publish(
        heartbeatSubject(this.#o.cluster.namespace),
        signBody('heartbeat', this.heartbeat(), this.#o.identity, this.id),
      );
    } catch (e) {
      this.#log.warn({ err: e }, 'mpc node: heartbeat failed');
    }
  }
}

/** Public per-party verification shares of a key share (DKLs23), hex by party id; public data. */
function publicSharesOf(share: KeyShare): Record<string, string> | undefined {
  const ps = (share as { publicShares?: unknown }).publicShares;
  if (!(ps instanceof Map)) return undefined;
  return Object.fromEntries([...ps].map(([k, v]) => [String(k), hex(v as Uint8Array)]));
}

export function peersOf(cluster: ClusterFile): PeerInfo[] {
  return cluster.nodes.map((n) => ({
    id: n.id,
    publicKey: unhex(n.publicKey),
    dhPublicKey: unhex(n.dhPublicKey),
  }));
}

export function abortInfo(e: unknown): AbortInfo {
  if (e instanceof CustosError) {
    const d = (e.details ?? {}) as Partial<AbortInfo>;
    return {
      code: e.code,
      message: e.shortMessage,
      culprit: d.culprit ?? null,
      reason: d.reason ?? null,
      round: d.round ?? null,
      protocol: d.protocol ?? null,
      cheating: false,
    };
  }
  return {
    code: 'CUSTOS_MPC_ABORT',
    message: e instanceof Error ? e.message : 'unexpected error',
    culprit: null,
    reason: 'bad-state',
    round: null,
    protocol: null,
    cheating: false,
  };
}
