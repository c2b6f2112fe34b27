// The audit log writer. Every state change appends its entry inside the SAME database transaction
// as the change (`append(trx, …)`), so a change whose entry cannot be written is rolled back with
// it: fail closed. Sensitive detail values (emails, IP addresses) are stored only as
// HMAC-SHA256 under the audit key — searchable by value, not readable. Every `checkpointEvery`
// entries (and on a timer, see `startCheckpointTimer`) the head is signed with the Ed25519
// checkpoint key; checkpoints are also written to the log stream so a copy exists outside the DB.
import { createHmac } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import type { Kysely, Transaction } from 'kysely';
import { AuditError, CustosError } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
import { AuditRepository } from '../store/repositories/audit.ts';
import type { Database } from '../store/schema.ts';
import {
  type ActorType,
  type AuditEntry,
  type AuditOutcome,
  checkpointMessage,
  entryHash,
  GENESIS_HASH,
  normalizeDetails,
} from './chain.ts';

export interface AuditActor {
  type: ActorType;
  id: string | null;
}

export interface AuditInput {
  /** Owning organisation; null for installation-wide events (key rotation, bootstrap). */
  orgId: string | null;
  actor: AuditActor;
  /** Dotted verb, e.g. `user.create`, `auth.login`, `api_key.revoke`. */
  action: string;
  target?: { type: string; id: string } | null;
  outcome?: AuditOutcome;
  requestId?: string | null;
  /** Non-secret context. Never put passwords, tokens, keys or TOTP secrets here. */
  details?: Record<string, unknown>;
  /** Values stored only as `hmac-sha256:<hex>` under the audit key (e.g. email, ip). */
  sensitive?: Record<string, string | null | undefined>;
}

export interface AuditLogOptions {
  /** HMAC-SHA256 key for sensitive values (>= 32 bytes). */
  hmacKey: Uint8Array;
  /** Ed25519 secret key (32-byte seed) that signs checkpoints. */
  checkpointKey: Uint8Array;
  /** Sign a checkpoint every this many entries. */
  checkpointEvery: number;
  logger?: Logger;
  /** For tests: the clock. */
  now?: () => Date;
}

/** The error of an entry that could not be written (the caller's transaction then rolls back). */
function unavailable(cause: unknown, inputs: AuditInput[]): AuditError {
  return new AuditError(
    'CUSTOS_AUDIT_UNAVAILABLE',
    'the audit entry could not be written; nothing was changed',
    {
      cause,
      details: { action: inputs[0]?.action },
    },
  );
}

export class AuditLog {
  readonly checkpointPublicKey: Uint8Array;
  private readonly hmacKey: Uint8Array;
  private readonly checkpointKey: Uint8Array;
  private readonly every: bigint;
  private readonly now: () => Date;
  /** Transactions whose entries are collected and written at their end (see `transaction`). */
  readonly #deferred = new WeakMap<Transaction<Database>, AuditInput[]>();
  /** The head each transaction has written (it holds the head lock from its first insert to its end). */
  readonly #heads = new WeakMap<Transaction<Database>, { seq: bigint; hash: string }>();
  /** The last entry this process wrote (maybe rolled back since): a guess, checked on insert. */
  #lastHead: { seq: bigint; hash: string } | undefined;

  constructor(private readonly opts: AuditLogOptions) {
    if (opts.hmacKey.length < 32) throw new TypeError('audit: hmacKey must be at least 32 bytes');
    if (opts.checkpointKey.length !== 32) throw new TypeError('audit: checkpointKey must be 32 bytes');
    if (!Number.isSafeInteger(opts.checkpointEvery) || opts.checkpointEvery < 1) {
      throw new TypeError('audit: checkpointEvery must be a positive integer');
    }
    this.hmacKey = Uint8Array.from(opts.hmacKey);
    this.checkpointKey = Uint8Array.from(opts.checkpointKey);
    this.checkpointPublicKey = ed25519.getPublicKey(this.checkpointKey);
    this.every = BigInt(opts.checkpointEvery);
    this.now = opts.now ?? (() => new Date());
  }

  /** `hmac-sha256:<hex>` of a sensitive value of detail `field` (what is stored, and what to search). */
  protect(field: string, value: string): string {
    const mac = createHmac('sha256', this.hmacKey)
      .update(`custos/audit-field/v1\u0000${field}\u0000`)
      .update(value)
      .digest('hex');
    return `hmac-sha256:${mac}`;
  }

  /**
   * Appends one entry inside `trx` — the transaction that makes the change being recorded. Throws
   * AuditError CUSTOS_AUDIT_UNAVAILABLE if it cannot; the caller's transaction then rolls back. In a
   * transaction opened by `transaction()` the entry is written when the work is done, just before
   * commit (same guarantees: it commits with the change or neither does).
   */
  async append(trx: Transaction<Database>, input: AuditInput): Promise<void> {
    await this.appendMany(trx, [input]);
  }

  /**
   * Appends several entries, in order, inside `trx` (one INSERT). Same guarantees as `append`: if
   * they cannot be written, the caller's transaction rolls back.
   */
  async appendMany(trx: Transaction<Database>, inputs: AuditInput[]): Promise<void> {
    if (!trx.isTransaction) {
      throw new AuditError('CUSTOS_INTERNAL', 'audit.append needs the transaction of the change it records');
    }
    const pending = this.#deferred.get(trx);
    if (pending) {
      // Validated now (a detail that cannot be encoded fails the change at once, not at commit).
      try {
        for (const input of inputs) normalizeDetails(input.details ?? {});
      } catch (e) {
        throw unavailable(e, inputs);
      }
      pending.push(...inputs);
      return;
    }
    await this.#write(trx, inputs);
  }

  /**
   * Runs `fn` in a new transaction whose audit entries are written together at its end, just before
   * commit. The head lock — one per installation, it orders every entry — is then held only for
   * that insert and the commit, not for the whole transaction, so transactions that record entries
   * run concurrently up to that point; and a transaction waiting for the head lock holds no lock the
   * holder could be waiting for (the holder waits for nothing else), so it cannot deadlock on it.
   * Entries keep commit order: seq is allocated under the lock, which is released by the commit.
   */
  transaction<T>(db: Kysely<Database>, fn: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
    return db.transaction().execute(async (trx) => {
      const pending: AuditInput[] = [];
      this.#deferred.set(trx, pending);
      const out = await fn(trx);
      this.#deferred.delete(trx);
      await this.#write(trx, pending);
      return out;
    });
  }

  async #write(trx: Transaction<Database>, inputs: AuditInput[]): Promise<AuditEntry[]> {
    if (inputs.length === 0) return [];
    try {
      const repo = new AuditRepository(trx);
      // The head is known once per transaction (under the lock, held until commit, so no other
      // writer can move it); later appends in the same transaction chain onto the entry just written.
      let head: { seq: bigint; hash: string } | null | undefined = this.#heads.get(trx);
      let entries: AuditEntry[] | undefined;
      if (!head) {
        await repo.lockHead();
        // The head this process last wrote is usually still the head: insert on that assumption,
        // checked by the database in the same statement; only when another writer (another process,
        // or a rolled-back transaction of ours) moved it is the head read.
        const guess = this.#lastHead;
        if (guess) {
          entries = this.#chain(inputs, guess);
          this.#heads.delete(trx);
          if (!(await repo.insertIfHead(entries, guess))) entries = undefined;
        }
        if (!entries) head = (await repo.head()) ?? null;
      }
      if (!entries) {
        entries = this.#chain(inputs, head ?? null);
        // Forget the cached head until the insert succeeded: a failed insert aborts the transaction.
        this.#heads.delete(trx);
        if (entries.length === 1) await repo.insert(entries[0]!);
        else await repo.insertMany(entries);
      }
      const last = entries[entries.length - 1]!;
      this.#heads.set(trx, { seq: last.seq, hash: last.hash });
      this.#lastHead = { seq: last.seq, hash: last.hash };
      for (const entry of entries) {
        if (entry.seq % this.every === 0n) await this.writeCheckpoint(repo, entry.seq, entry.hash);
      }
      return entries;
    } catch (e) {
      throw unavailable(e, inputs);
    }
  }

  /** Entries for `inputs`, chained onto `head` (null: the log is empty). */
  #chain(inputs: AuditInput[], head: { seq: bigint; hash: string } | null): AuditEntry[] {
    const entries: AuditEntry[] = [];
    let seq = head ? head.seq + 1n : 1n;
    let prev = head?.hash ?? GENESIS_HASH;
    for (const input of inputs) {
      const entry = this.build(input, seq, prev);
      entries.push(entry);
      seq = entry.seq + 1n;
      prev = entry.hash;
    }
    return entries;
  }

  /** An entry that records no other change (e.g. a denied request): its own transaction. */
  async record(db: Kysely<Database>, input: AuditInput): Promise<void> {
    try {
      return await db.transaction().execute((trx) => this.append(trx, input));
    } catch (e) {
      if (e instanceof CustosError) throw e;
      throw new AuditError('CUSTOS_AUDIT_UNAVAILABLE', 'the audit entry could not be written', { cause: e });
    }
  }

  /** Builds entries (seq, hashes) without storing them — for bulk import and tests. */
  build(input: AuditInput, seq: bigint, prevHash: string): AuditEntry {
    const details = normalizeDetails(input.details ?? {});
    for (const [k, v] of Object.entries(input.sensitive ?? {})) {
      if (v !== undefined && v !== null) details[k] = this.protect(k, v);
    }
    const base = {
      seq,
      occurredAt: this.now(),
      orgId: input.orgId,
      actorType: input.actor.type,
      actorId: input.actor.id,
      action: input.action,
      targetType: input.target?.type ?? null,
      targetId: input.target?.id ?? null,
      outcome: input.outcome ?? 'success',
      requestId: input.requestId ?? null,
      details,
      prevHash,
    };
    return { ...base, hash: entryHash(base) };
  }

  /** Signs the current head if it has no checkpoint yet (the timer calls this). */
  async checkpointNow(db: Kysely<Database>): Promise<{ seq: bigint; hash: string } | null> {
    return db.transaction().execute(async (trx) => {
      const repo = new AuditRepository(trx);
      await repo.lockHead();
      const head = await repo.head();
      if (!head) return null;
      const last = await repo.lastCheckpoint();
      if (last && last.seq >= head.seq) return null;
      await this.writeCheckpoint(repo, head.seq, head.hash);
      return head;
    });
  }

  /** Every `seconds`, checkpoint the head when it moved. Returns a stop function. */
  startCheckpointTimer(db: Kysely<Database>, seconds: number): () => void {
    const t = setInterval(() => {
      this.checkpointNow(db).catch((err) => this.opts.logger?.error({ err }, 'audit checkpoint failed'));
    }, seconds * 1000);
    t.unref();
    return () => clearInterval(t);
  }

  private async writeCheckpoint(repo: AuditRepository, seq: bigint, hash: string): Promise<void> {
    const createdAt = this.now();
    const signature = ed25519.sign(checkpointMessage(seq, hash, createdAt), this.checkpointKey);
    const cp = {
      seq,
      hash,
      createdAt,
      publicKey: Buffer.from(this.checkpointPublicKey).toString('hex'),
      signature: Buffer.from(signature).toString('hex'),
    };
    await repo.insertCheckpoint(cp);
    this.opts.logger?.info(
      {
        stream: 'audit-checkpoint',
        seq: seq.toString(),
        hash,
        createdAt: createdAt.toISOString(),
        sig: cp.signature,
      },
      'audit checkpoint',
    );
  }
}
