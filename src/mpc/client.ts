// The coordinator: the control plane's side of MPC. It signs requests with the control plane's key,
// picks live nodes (heartbeats, or a ping when it has none yet), enforces timeouts, verifies every
// signature with the scheme's verifier before returning it, and keeps the key registry.
// Failure policy: an abort WITHOUT a cheating verdict (timeout, a node down, a missing presignature)
// is retried once with another signer subset; a cheating verdict locks the key in the registry,
// raises a security event and is never retried.
//
//   const c = new MpcCoordinator({ bus, cluster, controlPlaneKey, registry });
//   await c.start();
//   const key = await c.createKey('ecdsa-secp256k1', 2, 3, { allowRawSigning: true });
//   const sig = await c.sign(key.keyId, digest, { path: 'm/0/7', authorization });
import { randomBytes, randomUUID } from 'node:crypto';
import type { Bus, Subscription } from '../bus/index.ts';
import { ed25519PrivateKeyObject } from '../crypto/ed25519-openssl.ts';
import { xpubOf } from '../crypto/hd.ts';
import type { SchemeName } from '../crypto/threshold.ts';
import { BusError, MpcError } from '../errors.ts';
import type { ClusterFile } from './cluster.ts';
import { SecurityEvents } from './events.ts';
import type { NodeLogger } from './node.ts';
import { type KeyRecord, type KeyRegistry, MemoryKeyRegistry } from './registry.ts';
import { getScheme } from './schemes.ts';
import { checkKeyId } from './share-store.ts';
import {
  type AbortInfo,
  type Authorization,
  type Heartbeat,
  heartbeatSubject,
  type NodeReply,
  openSigned,
  requestSubject,
  signBody,
} from './wire.ts';

export interface CoordinatorOptions {
  bus: Bus;
  cluster: ClusterFile;
  /** The control plane's Ed25519 request-signing secret key (32 bytes). */
  controlPlaneKey: Uint8Array;
  registry?: KeyRegistry;
  logger?: NodeLogger;
  events?: SecurityEvents;
}

export interface CreateKeyOptions {
  /** Allow signing raw digests without authorisation evidence (tests, demos). Default false. */
  allowRawSigning?: boolean;
  keyId?: string;
  timeoutMs?: number;
  /** Committee to use (default: the first n live nodes). */
  parties?: number[];
}

export interface SignOptions {
  /** Non-hardened derivation path, e.g. m/0/7. */
  path?: string;
  /** Evidence the nodes' authorize chains verify (approvals, verifier quorum certificate). */
  authorization?: Authorization;
  timeoutMs?: number;
  /** Force a signer set (tests); default: the lowest-id live nodes. */
  signers?: number[];
}

export interface SignResult {
  keyId: string;
  scheme: SchemeName;
  threshold: number;
  parties: number;
  signers: number[];
  publicKey: string;
  xpub?: string;
  derivationPath: string | null;
  signingPublicKey: string;
  /** 64 bytes hex: r||s (ECDSA, low-s), R||s (Ed25519), R.x||s (BIP340). */
  signature: string;
  recovery?: number;
  latencyMs: number;
  attempts: number;
  /** ECDSA: whether the online sign used a pooled presignature. */
  presignature?: string;
  /** The answering node's time per phase (diagnostics). */
  nodePhasesMs?: Record<string, number>;
}

export interface NodeStatus {
  id: number;
  up: boolean;
  lastSeen: string | null;
  keys: Heartbeat['keys'];
  pools: Heartbeat['pools'];
}

const noopLogger: NodeLogger = { debug() {}, info() {}, warn() {}, error() {} };
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));

type Outcome = { node: number; reply: NodeReply };

export class MpcCoordinator {
  readonly events: SecurityEvents;
  readonly registry: KeyRegistry;
  readonly #o: CoordinatorOptions;
  readonly #log: NodeLogger;
  readonly #signKey: ReturnType<typeof ed25519PrivateKeyObject>;
  readonly #heartbeats = new Map<number, { at: number; hb: Heartbeat }>();
  readonly #pings = new Map<number, { at: number; up: boolean }>();
  #sub: Subscription | undefined;
  readonly #hbMs: number;

  constructor(opts: CoordinatorOptions) {
    this.#o = opts;
    this.#log = opts.logger ?? noopLogger;
    this.events = opts.events ?? new SecurityEvents('coordinator', this.#log);
    this.registry = opts.registry ?? new MemoryKeyRegistry();
    this.#signKey = ed25519PrivateKeyObject(opts.controlPlaneKey);
    this.#hbMs = opts.cluster.timeouts.heartbeatMs;
  }

  async start(): Promise<void> {
    this.#sub = await this.#o.bus.subscribe(heartbeatSubject(this.#o.cluster.namespace), (m) =>
      this.#onHeartbeat(m.data),
    );
  }

  async stop(): Promise<void> {
    await this.#sub?.unsubscribe();
    this.#sub = undefined;
  }

  #onHeartbeat(data: Uint8Array): void {
    const opened = openSigned('heartbeat', data, (n) => this.#nodeKey(n));
    if ('error' in opened) {
      this.events.emitEvent({
        kind: 'bad-signature',
        ...(opened.node !== undefined ? { peer: opened.node } : {}),
        detail: `heartbeat: ${opened.error}`,
      });
      return;
    }
    const hb = opened.body as Heartbeat;
    if (hb.node !== opened.node) return;
    this.#heartbeats.set(hb.node, { at: Date.now(), hb });
  }

  #nodeKey(n: number | undefined): Uint8Array | undefined {
    const node = this.#o.cluster.nodes.find((x) => x.id === n);
    return node ? unhex(node.publicKey) : undefined;
  }

  // Requests --------------------------------------------------------------------------------------

  #sessionId(): string {
    return randomBytes(32).toString('hex');
  }

  async #request(node: number, body: Record<string, unknown>, timeoutMs: number): Promise<NodeReply> {
    const requestId = String(body['requestId']);
    const data = signBody('request', body, this.#signKey);
    try {
      const r = await this.#o.bus.request(requestSubject(node, this.#o.cluster.namespace), data, {
        timeoutMs: timeoutMs + 2000,
      });
      const opened = openSigned('reply', r.data, (n) => (n === node ? this.#nodeKey(n) : undefined));
      if ('error' in opened) {
        this.events.emitEvent({ kind: 'bad-signature', peer: node, detail: `reply: ${opened.error}` });
        return fail(requestId, 'CUSTOS_MPC_ABORT', `node ${node}: reply rejected (${opened.error})`);
      }
      return opened.body as NodeReply;
    } catch (e) {
      if (
        e instanceof BusError &&
        (e.code === 'CUSTOS_BUS_NO_RESPONDERS' || e.code === 'CUSTOS_BUS_TIMEOUT')
      ) {
        this.#markDown(node);
        return {
          ...fail(
            requestId,
            'CUSTOS_MPC_TIMEOUT',
            `node ${node} did not answer (${e.code === 'CUSTOS_BUS_NO_RESPONDERS' ? 'not connected' : 'timed out'})`,
          ),
          unreachable: node,
        };
      }
      throw e;
    }
  }

  #body(type: string, timeoutMs: number, fields: Record<string, unknown>): Record<string, unknown> {
    const now = Date.now();
    return {
      v: 1,
      type,
      requestId: randomUUID(),
      sessionId: this.#sessionId(),
      issuedAt: now,
      expiresAt: now + timeoutMs + 30_000,
      timeoutMs,
      ...fields,
    };
  }

  /**
   * Sends one request to several nodes. Resolves when every node answered, or earlier when
   * `decisive` says the outcome is known (e.g. the first success, or any failure).
   */
  #fanOut(
    nodes: readonly number[],
    body: Record<string, unknown>,
    timeoutMs: number,
    decisive: (o: Outcome, all: Outcome[]) => boolean,
  ): Promise<Outcome[]> {
    return new Promise((resolve, reject) => {
      const all: Outcome[] = [];
      let done = false;
      for (const node of nodes) {
        this.#request(node, body, timeoutMs).then(
          (reply) => {
            const o = { node, reply };
            all.push(o);
            if (!done && (all.length === nodes.length || decisive(o, all))) {
              done = true;
              resolve([...all]);
            } else if (done) {
              this.#late(o, body);
            }
          },
          (e) => {
            if (!done) {
              done = true;
              reject(e);
            }
          },
        );
      }
    });
  }

  /** A reply after the outcome was decided still counts for security (a cheating verdict). */
  #late(o: Outcome, body: Record<string, unknown>): void {
    if (!o.reply.ok && o.reply.error.cheating && typeof body['keyId'] === 'string') {
      this.#lock(body['keyId'], o.reply.error, o.node, String(body['sessionId']));
    }
  }

  // Liveness --------------------------------------------------------------------------------------

  #markDown(node: number): void {
    this.#heartbeats.delete(node);
    this.#pings.set(node, { at: Date.now(), up: false });
  }

  async #isLive(node: number): Promise<boolean> {
    const hb = this.#heartbeats.get(node);
    const now = Date.now();
    const ping = this.#pings.get(node);
    if (ping && !ping.up && now - ping.at < this.#hbMs) {
      // Recently unreachable: only a newer heartbeat brings it back.
      return hb !== undefined && hb.at > ping.at;
    }
    if (hb && now - hb.at < this.#hbMs * 3) return true;
    if (ping && now - ping.at < this.#hbMs) return ping.up;
    const r = await this.#request(node, this.#body('ping', 1000, {}), 1000);
    this.#pings.set(node, { at: Date.now(), up: r.ok });
    return r.ok;
  }

  async liveNodes(candidates: readonly number[] = this.#o.cluster.nodes.map((n) => n.id)): Promise<number[]> {
    const live = await Promise.all(candidates.map(async (n) => ((await this.#isLive(n)) ? n : -1)));
    return live.filter((n) => n > 0).sort((a, b) => a - b);
  }

  // Keys ------------------------------------------------------------------------------------------

  getKey(keyId: string): KeyRecord {
    const rec = this.registry.get(checkKeyId(keyId));
    if (!rec) throw new MpcError('CUSTOS_MPC_KEY_NOT_FOUND', `no key ${keyId}`);
    return rec;
  }

  #assertUnlocked(rec: KeyRecord): void {
    if (rec.locked) {
      throw new MpcError('CUSTOS_MPC_KEY_LOCKED', `key ${rec.keyId} is locked: ${rec.locked.reason}`, {
        details: { keyId: rec.keyId, culprit: rec.locked.culprit, lockedAt: rec.locked.at },
      });
    }
  }

  #lock(keyId: string, e: AbortInfo, reporter: number, sessionId: string): void {
    const rec = this.registry.get(keyId);
    if (!rec || rec.locked) return;
    rec.locked = {
      at: new Date().toISOString(),
      reason:
        reporter === 0
          ? `coordinator found ${e.reason ?? ''}: ${e.message}`
          : `node ${reporter} reported ${e.protocol ?? '?'}/round${e.round ?? '?'} ${e.reason ?? ''}: ${e.message}`,
      culprit: e.culprit,
      sessionId,
    };
    this.registry.put(rec);
    this.events.emitEvent({
      kind: 'cheating',
      keyId,
      sessionId,
      ...(e.culprit !== null ? { peer: e.culprit } : {}),
      ...(e.protocol ? { protocol: e.protocol } : {}),
      ...(e.round !== null ? { round: e.round } : {}),
      detail: e.message,
    });
    this.events.emitEvent({
      kind: 'key-locked',
      keyId,
      ...(e.culprit !== null ? { peer: e.culprit } : {}),
      detail: rec.locked.reason,
    });
  }

  /** Runs DKG among n live nodes; every node must report the same public key. */
  async createKey(
    scheme: SchemeName,
    threshold: number,
    n?: number,
    opts: CreateKeyOptions = {},
  ): Promise<KeyRecord> {
    const impl = await getScheme(scheme);
    const size = n ?? this.#o.cluster.nodes.length;
    if (!Number.isInteger(threshold) || threshold < 1 || !Number.isInteger(size) || threshold > size) {
      throw new MpcError('CUSTOS_MPC_BAD_REQUEST', `threshold must be 1..n (got ${threshold} of ${size})`);
    }
    const keyId = checkKeyId(opts.keyId ?? `key_${randomBytes(12).toString('hex')}`);
    if (this.registry.get(keyId)) throw new MpcError('CUSTOS_MPC_BAD_REQUEST', `key ${keyId} already exists`);
    const live = await this.liveNodes(opts.parties ?? undefined);
    if (live.length < size) {
      throw new MpcError(
        'CUSTOS_MPC_TIMEOUT',
        `only ${live.length} MPC node(s) reachable, ${size} needed for keygen`,
        {
          details: { reachable: live, needed: size },
        },
      );
    }
    const parties = live.slice(0, size);
    const timeoutMs = opts.timeoutMs ?? this.#o.cluster.timeouts.keygenMs;
    const body = this.#body('keygen', timeoutMs, {
      keyId,
      scheme,
      threshold,
      parties,
      allowRawSigning: opts.allowRawSigning ?? false,
    });
    const outcomes = await this.#fanOut(parties, body, timeoutMs, (o) => !o.reply.ok);
    const failed = outcomes.find((o) => !o.reply.ok);
    if (failed) throw this.#failure(failed, keyId, String(body['sessionId']), 'keygen');
    const results = outcomes.map((o) => (o.reply as Extract<NodeReply, { ok: true }>).result);
    const pk = results[0]!['publicKey'] as string;
    const cc = results[0]!['chainCode'] as string;
    if (!results.every((r) => r['publicKey'] === pk && r['chainCode'] === cc)) {
      throw new MpcError('CUSTOS_MPC_ABORT', `keygen ${keyId}: nodes disagree on the public key`);
    }
    const publicShares = results[0]!['publicShares'] as Record<string, string> | undefined;
    const rec: KeyRecord = {
      keyId,
      scheme: impl.name,
      ...(publicShares ? { publicShares } : {}),
      threshold,
      parties,
      publicKey: pk,
      chainCode: cc,
      ...(xpubFor(impl.name, pk, cc) ? { xpub: xpubFor(impl.name, pk, cc)! } : {}),
      allowRawSigning: opts.allowRawSigning ?? false,
      generation: 0,
      createdAt: new Date().toISOString(),
    };
    this.registry.put(rec);
    this.#log.info({ keyId, scheme, threshold, parties }, 'mpc: key created');
    return rec;
  }

  #failure(o: Outcome, keyId: string, sessionId: string, what: string): MpcError {
    const e = (o.reply as Extract<NodeReply, { ok: false }>).error;
    if (e.cheating) this.#lock(keyId, e, o.node, sessionId);
    const code = (e.code.startsWith('CUSTOS_MPC_') ? e.code : 'CUSTOS_MPC_ABORT') as 'CUSTOS_MPC_ABORT';
    return new MpcError(code, `${what}: ${e.message}`, {
      details: {
        node: o.node,
        culprit: e.culprit,
        reason: e.reason,
        round: e.round,
        protocol: e.protocol,
        cheating: e.cheating,
        ...(e.missing ? { missing: e.missing } : {}),
      },
    });
  }

  /**
   * Signs with `threshold` live nodes. ECDSA: `message` is the 32-byte digest; EdDSA/BIP340: the
   * message itself. The signature is verified under the (derived) public key before it is returned.
   */
  async sign(keyId: string, message: Uint8Array, opts: SignOptions = {}): Promise<SignResult> {
    const started = performance.now();
    let rec = this.getKey(keyId);
    this.#assertUnlocked(rec);
    const scheme = await getScheme(rec.scheme);
    if (!(message instanceof Uint8Array) || (rec.scheme === 'ecdsa-secp256k1' && message.length !== 32)) {
      throw new MpcError('CUSTOS_MPC_BAD_REQUEST', 'ECDSA signs a 32-byte digest computed by the caller');
    }
    const path = opts.path && opts.path !== 'm' ? opts.path : undefined;
    const info = {
      scheme: rec.scheme,
      threshold: rec.threshold,
      parties: rec.parties,
      publicKey: unhex(rec.publicKey),
      chainCode: unhex(rec.chainCode),
    };
    let expected: Uint8Array;
    try {
      expected = path ? scheme.derivePublicKey(info, path) : info.publicKey;
    } catch (e) {
      throw new MpcError('CUSTOS_MPC_BAD_REQUEST', `derivation path ${path}: ${(e as Error).message}`);
    }
    const timeoutMs = opts.timeoutMs ?? this.#o.cluster.timeouts.signMs;
    const excluded = new Set<number>();
    let lastError: MpcError | undefined;
    let previous: string | undefined;
    for (let attempt = 1; attempt <= 2; attempt++) {
      let signers: number[];
      if (opts.signers) {
        signers = [...opts.signers].sort((a, b) => a - b);
      } else {
        const live = (await this.liveNodes(rec.parties)).filter((n) => !excluded.has(n));
        if (live.length < rec.threshold) {
          throw new MpcError(
            'CUSTOS_MPC_TIMEOUT',
            `key ${keyId}: only ${live.length} of its nodes are reachable, ${rec.threshold} needed; nothing was signed`,
            {
              details: {
                reachable: live,
                needed: rec.threshold,
                ...(lastError ? { previous: lastError.shortMessage } : {}),
              },
            },
          );
        }
        signers = live.slice(0, rec.threshold);
      }
      if (attempt > 1 && signers.join() === previous && excluded.size > 0) break;
      previous = signers.join();
      const body = this.#body('sign', timeoutMs, {
        keyId,
        generation: rec.generation,
        signers,
        message: hex(message),
        ...(path ? { derivationPath: path } : {}),
        ...(opts.authorization ? { authorization: opts.authorization } : {}),
      });
      const sessionId = String(body['sessionId']);
      // Decided by the first good signature or the first failure (a t-of-t session cannot recover).
      // Each reply's signature is verified once (the settle test and the pick below share it).
      const checked = new WeakMap<Outcome, boolean>();
      const isGood = (o: Outcome) => {
        let ok = checked.get(o);
        if (ok === undefined) {
          ok = this.#goodSig(o, scheme, message, expected);
          checked.set(o, ok);
        }
        return ok;
      };
      const outcomes = await this.#fanOut(signers, body, timeoutMs, (o) => !o.reply.ok || isGood(o));
      const good = outcomes.find(isGood);
      if (good) {
        const r = (good.reply as Extract<NodeReply, { ok: true }>).result;
        return {
          keyId,
          scheme: rec.scheme,
          threshold: rec.threshold,
          parties: rec.parties.length,
          signers,
          publicKey: rec.publicKey,
          ...(rec.xpub ? { xpub: rec.xpub } : {}),
          derivationPath: path ?? null,
          signingPublicKey: hex(expected),
          signature: r['signature'] as string,
          ...(typeof r['recovery'] === 'number' ? { recovery: r['recovery'] } : {}),
          latencyMs: Math.round((performance.now() - started) * 100) / 100,
          attempts: attempt,
          ...(typeof r['presignature'] === 'string' ? { presignature: r['presignature'] } : {}),
          ...(r['phasesMs'] && typeof r['phasesMs'] === 'object'
            ? { nodePhasesMs: r['phasesMs'] as Record<string, number> }
            : {}),
        };
      }
      // The most telling failure decides: a cheating verdict, else one that names a culprit (a node
      // that received a bad message), else any — the culprit's own reply (a peer gave up on it) is not.
      const failures = outcomes.filter((o) => !o.reply.ok);
      const errOf = (o: (typeof outcomes)[number]) => (o.reply as Extract<NodeReply, { ok: false }>).error;
      const failed =
        failures.find((o) => errOf(o).cheating) ??
        failures.find((o) => errOf(o).culprit !== null && errOf(o).culprit !== o.node) ??
        failures[0];
      if (!failed) {
        // Every node answered "ok" with a signature that does not verify: treat as an abort.
        // Honest nodes never return one, so someone cheated: lock the key (no retry, as for a
        // cheating verdict).
        const message = 'every node answered ok but the returned signature does not verify';
        this.#lock(
          keyId,
          {
            code: 'CUSTOS_MPC_ABORT',
            message,
            culprit: null,
            reason: 'invalid-signature',
            round: null,
            protocol: null,
            cheating: true,
          },
          0,
          sessionId,
        );
        throw new MpcError('CUSTOS_MPC_ABORT', `key ${keyId}: ${message}; the key is locked`, {
          details: { keyId, cheating: true, culprit: null },
        });
      }
      lastError = this.#failure(failed, keyId, sessionId, `sign ${keyId}`);
      const e = (failed.reply as Extract<NodeReply, { ok: false }>).error;
      if (e.cheating || e.code === 'CUSTOS_MPC_KEY_LOCKED') {
        if (e.code === 'CUSTOS_MPC_KEY_LOCKED')
          this.#lock(keyId, { ...e, message: `node ${failed.node}: ${e.message}` }, failed.node, sessionId);
        throw lastError;
      }
      if (!['CUSTOS_MPC_TIMEOUT', 'CUSTOS_MPC_ABORT', 'CUSTOS_MPC_NODE_STATE'].includes(e.code))
        throw lastError;
      for (const o of outcomes) {
        const unreachable = o.reply.ok ? undefined : o.reply.unreachable;
        if (unreachable !== undefined) excluded.add(unreachable);
        // Nodes reported missing are left out next time, unless a culprit is known: then it alone is.
        if (!o.reply.ok && e.culprit === null) for (const m of o.reply.error.missing ?? []) excluded.add(m);
      }
      if (e.culprit !== null) excluded.add(e.culprit);
      this.#log.warn(
        { keyId, attempt, signers, error: e },
        'mpc: sign attempt failed; retrying with another subset',
      );
      rec = this.getKey(keyId);
      this.#assertUnlocked(rec);
      if (opts.signers) break;
    }
    throw lastError
      ? new MpcError(lastError.code as 'CUSTOS_MPC_ABORT', `${lastError.shortMessage}; nothing was signed`, {
          ...(lastError.details ? { details: lastError.details } : {}),
        })
      : new MpcError('CUSTOS_MPC_ABORT', `sign ${keyId}: failed; nothing was signed`);
  }

  #goodSig(
    o: Outcome,
    scheme: Awaited<ReturnType<typeof getScheme>>,
    message: Uint8Array,
    expected: Uint8Array,
  ): boolean {
    if (!o.reply.ok) return false;
    const r = o.reply.result;
    if (typeof r['signature'] !== 'string' || r['signingPublicKey'] !== hex(expected)) return false;
    try {
      return scheme.verify(expected, message, {
        signature: unhex(r['signature']),
        signingPublicKey: expected,
        ...(typeof r['recovery'] === 'number' ? { recovery: r['recovery'] } : {}),
      });
    } catch {
      return false;
    }
  }

  /** Two-phase: every node computes and stores its new share as pending, then all commit. */
  async #rotate(
    rec: KeyRecord,
    type: 'refresh' | 'reshare',
    nodes: number[],
    fields: Record<string, unknown>,
    timeoutMs: number,
  ): Promise<{ generation: number; results: Record<string, unknown>[] }> {
    const body = this.#body(type, timeoutMs, { keyId: rec.keyId, generation: rec.generation, ...fields });
    const outcomes = await this.#fanOut(nodes, body, timeoutMs, (o) => !o.reply.ok);
    const failed = outcomes.find((o) => !o.reply.ok);
    const generation = rec.generation + 1;
    if (failed) {
      await this.#fanOut(
        nodes,
        this.#body('commit', 10_000, { keyId: rec.keyId, generation, action: 'discard' }),
        10_000,
        () => false,
      );
      throw this.#failure(failed, rec.keyId, String(body['sessionId']), type);
    }
    const commits = await this.#fanOut(
      nodes,
      this.#body('commit', 10_000, { keyId: rec.keyId, generation, action: 'commit' }),
      10_000,
      () => false,
    );
    const bad = commits.find((o) => !o.reply.ok);
    if (bad) {
      throw new MpcError(
        'CUSTOS_MPC_NODE_STATE',
        `${type} ${rec.keyId}: node ${bad.node} did not commit (${(bad.reply as Extract<NodeReply, { ok: false }>).error.message}); re-send the commit when it is back`,
      );
    }
    return {
      generation,
      results: outcomes.map((o) => (o.reply as Extract<NodeReply, { ok: true }>).result),
    };
  }

  /** New shares for the same committee and public key; old shares stop combining with new ones. */
  async refresh(keyId: string, opts: { timeoutMs?: number } = {}): Promise<KeyRecord> {
    const rec = this.getKey(keyId);
    this.#assertUnlocked(rec);
    const live = await this.liveNodes(rec.parties);
    if (live.length !== rec.parties.length) {
      throw new MpcError(
        'CUSTOS_MPC_TIMEOUT',
        `refresh ${keyId} needs every node of the committee; reachable: ${live.join(',')}`,
      );
    }
    const { generation, results } = await this.#rotate(
      rec,
      'refresh',
      rec.parties,
      {},
      opts.timeoutMs ?? this.#o.cluster.timeouts.keygenMs,
    );
    const publicShares = results[0]?.['publicShares'] as Record<string, string> | undefined;
    const next = { ...rec, generation, ...(publicShares ? { publicShares } : {}) };
    this.registry.put(next);
    return next;
  }

  /**
   * Moves the key to a new committee and/or threshold, same public key. Also the remedy for a
   * locked key: reshare to a committee without the culprit (the lock is cleared on success).
   */
  async reshare(
    keyId: string,
    opts: { committee: number[]; threshold: number; oldParties?: number[]; timeoutMs?: number },
  ): Promise<KeyRecord> {
    const rec = this.getKey(keyId);
    const committee = [...new Set(opts.committee)].sort((a, b) => a - b);
    if (opts.threshold < 1 || opts.threshold > committee.length) {
      throw new MpcError('CUSTOS_MPC_BAD_REQUEST', 'threshold must be 1..committee size');
    }
    const culprit = rec.locked?.culprit ?? null;
    const old = (opts.oldParties ?? (await this.liveNodes(rec.parties))).filter((p) => p !== culprit);
    if (old.length < rec.threshold) {
      throw new MpcError(
        'CUSTOS_MPC_TIMEOUT',
        `reshare ${keyId}: ${old.length} old node(s) available, ${rec.threshold} needed`,
      );
    }
    const liveNew = await this.liveNodes(committee);
    if (liveNew.length !== committee.length) {
      throw new MpcError('CUSTOS_MPC_TIMEOUT', `reshare ${keyId}: new committee nodes unreachable`);
    }
    const all = [...new Set([...old, ...committee])].sort((a, b) => a - b);
    const { generation, results } = await this.#rotate(
      rec,
      'reshare',
      all,
      {
        scheme: rec.scheme,
        info: {
          threshold: rec.threshold,
          parties: rec.parties,
          publicKey: rec.publicKey,
          chainCode: rec.chainCode,
          allowRawSigning: rec.allowRawSigning,
          ...(rec.publicShares ? { publicShares: rec.publicShares } : {}),
        },
        oldParties: old,
        newParties: committee,
        newThreshold: opts.threshold,
      },
      opts.timeoutMs ?? this.#o.cluster.timeouts.keygenMs,
    );
    const { locked: _cleared, publicShares: _old, ...rest } = rec;
    const publicShares = results.find((r) => r['member'] === true)?.['publicShares'] as
      | Record<string, string>
      | undefined;
    const next: KeyRecord = {
      ...rest,
      parties: committee,
      threshold: opts.threshold,
      generation,
      ...(publicShares ? { publicShares } : {}),
    };
    this.registry.put(next);
    return next;
  }

  /** Clears a lock on the coordinator and every node (after an investigation; prefer reshare). */
  async unlock(keyId: string): Promise<KeyRecord> {
    const rec = this.getKey(keyId);
    const outcomes = await this.#fanOut(
      rec.parties,
      this.#body('unlock', 10_000, { keyId }),
      10_000,
      () => false,
    );
    const bad = outcomes.find(
      (o) => !o.reply.ok && (o.reply.ok ? undefined : o.reply.unreachable) === undefined,
    );
    if (bad) throw this.#failure(bad, keyId, '', 'unlock');
    const { locked: _cleared, ...rest } = rec;
    this.registry.put(rest);
    this.events.emitEvent({ kind: 'key-locked', keyId, detail: 'key unlocked by an operator' });
    return rest;
  }

  /** Nodes (up/down, last seen, keys, pools) and keys of the registry. */
  async status(): Promise<{ nodes: NodeStatus[]; keys: KeyRecord[] }> {
    const ids = this.#o.cluster.nodes.map((n) => n.id);
    const live = new Set(await this.liveNodes(ids));
    const nodes = ids.map((id) => {
      const hb = this.#heartbeats.get(id);
      const ping = this.#pings.get(id);
      const seen = Math.max(hb?.at ?? 0, ping?.up ? ping.at : 0);
      return {
        id,
        up: live.has(id),
        lastSeen: seen > 0 ? new Date(seen).toISOString() : null,
        keys: hb?.hb.keys ?? [],
        pools: hb?.hb.pools ?? {},
      };
    });
    return { nodes, keys: this.registry.list() };
  }

  /** Heartbeat data per node, for callers that want pool sizes. */
  heartbeats(): Map<number, Heartbeat> {
    return new Map([...this.#heartbeats].map(([k, v]) => [k, v.hb]));
  }
}

function fail(requestId: string, code: string, message: string): Extract<NodeReply, { ok: false }> {
  return {
    ok: false,
    requestId,
    error: { code, message, culprit: null, reason: null, round: null, protocol: null, cheating: false },
  };
}

export function xpubFor(scheme: SchemeName, publicKey: string, chainCode: string): string | undefined {
  try {
    if (scheme === 'ecdsa-secp256k1') return xpubOf(unhex(publicKey), unhex(chainCode));
    if (scheme === 'schnorr-bip340') return xpubOf(unhex(`02${publicKey}`), unhex(chainCode));
  } catch {
    return undefined;
  }
  return undefined;
}
