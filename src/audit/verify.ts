// Walks the audit chain and its checkpoints and reports the first bad sequence number:
// - an edited entry fails its own hash;
// - a removed entry leaves a gap (the expected sequence number is reported);
// - reordered entries fail their hash (the sequence number is inside it) or their link;
// - a truncated tail is caught by a signed checkpoint beyond the last entry;
// - a rewritten-and-rehashed stretch is caught by the checkpoint that covers it.
import type { Kysely } from 'kysely';
import { ed25519Verify } from '../crypto/ed25519-openssl.ts';
import { AuditRepository } from '../store/repositories/audit.ts';
import type { Database } from '../store/schema.ts';
import { checkpointMessage, entryHash, GENESIS_HASH } from './chain.ts';

export interface VerifyAuditOptions {
  /** Start at this sequence number (its predecessor's stored hash is taken as the anchor). */
  fromSeq?: bigint;
  /** The trusted checkpoint public key; checkpoints signed by any other key are bad. */
  checkpointPublicKey?: Uint8Array;
  batchSize?: number;
  /** Called after each batch with the last sequence number checked. */
  onProgress?: (seq: bigint) => void;
}

export interface VerifyAuditResult {
  ok: boolean;
  /** Entries whose hash and link were checked. */
  checked: number;
  checkpointsChecked: number;
  /** Highest sequence number present. */
  headSeq: bigint | null;
  firstBadSeq: bigint | null;
  reason: string | null;
}

export async function verifyAuditChain(
  db: Kysely<Database>,
  opts: VerifyAuditOptions = {},
): Promise<VerifyAuditResult> {
  const repo = new AuditRepository(db);
  const from = opts.fromSeq !== undefined && opts.fromSeq > 1n ? opts.fromSeq : 1n;
  const batch = opts.batchSize ?? 2000;
  let prevHash = GENESIS_HASH;
  let anchored = true;
  if (from > 1n) {
    const anchor = await repo.get(from - 1n);
    if (anchor) prevHash = anchor.hash;
    else anchored = false; // nothing before `from` to link to: trust the first entry's prev_hash
  }
  const bad: { seq: bigint; reason: string }[] = [];
  const hashes = new Map<bigint, string>();
  let expected = from;
  let checked = 0;
  let headSeq: bigint | null = null;

  walk: for (;;) {
    const rows = await repo.range(expected, batch);
    if (rows.length === 0) break;
    for (const e of rows) {
      if (e.seq !== expected) {
        bad.push({ seq: expected, reason: `entry ${expected} is missing (next is ${e.seq})` });
        headSeq = e.seq;
        break walk;
      }
      if (!anchored) {
        prevHash = e.prevHash;
        anchored = true;
      }
      if (e.prevHash !== prevHash) {
        bad.push({ seq: e.seq, reason: `entry ${e.seq} does not link to entry ${e.seq - 1n}` });
        headSeq = e.seq;
        break walk;
      }
      const { hash, ...rest } = e;
      if (entryHash(rest) !== hash) {
        bad.push({ seq: e.seq, reason: `entry ${e.seq} was altered (hash mismatch)` });
        headSeq = e.seq;
        break walk;
      }
      hashes.set(e.seq, hash);
      prevHash = hash;
      headSeq = e.seq;
      expected = e.seq + 1n;
      checked++;
    }
    opts.onProgress?.(expected - 1n);
    if (rows.length < batch) break;
  }
  if (bad.length > 0) {
    // Past a break the real head is whatever is stored last.
    headSeq = (await repo.head())?.seq ?? headSeq;
  }

  const checkpoints = await repo.checkpoints(from);
  let checkpointsChecked = 0;
  let prevCheckpoint = from - 1n;
  for (const cp of checkpoints) {
    const pub = Buffer.from(cp.publicKey, 'hex');
    const trusted = opts.checkpointPublicKey;
    let sigOk = false;
    try {
      sigOk =
        (!trusted || Buffer.from(trusted).equals(pub)) &&
        ed25519Verify(
          pub,
          checkpointMessage(cp.seq, cp.hash, cp.createdAt),
          Buffer.from(cp.signature, 'hex'),
        );
    } catch {
      sigOk = false;
    }
    if (!sigOk) {
      bad.push({ seq: cp.seq, reason: `checkpoint at ${cp.seq} has a bad signature` });
      break;
    }
    checkpointsChecked++;
    if (bad.length > 0 && cp.seq >= bad[0]!.seq) {
      prevCheckpoint = cp.seq;
      continue; // the chain walk already found something earlier
    }
    const stored = hashes.get(cp.seq);
    if (stored === undefined) {
      if (headSeq === null || cp.seq > headSeq) {
        const first = (headSeq ?? from - 1n) + 1n;
        bad.push({
          seq: first,
          reason: `truncated: checkpoint at ${cp.seq} but the log ends at ${headSeq ?? 'nothing'}`,
        });
      }
      break;
    }
    if (stored !== cp.hash) {
      bad.push({
        seq: prevCheckpoint + 1n,
        reason: `entries ${prevCheckpoint + 1n}..${cp.seq} were rewritten (checkpoint ${cp.seq} does not match)`,
      });
      break;
    }
    prevCheckpoint = cp.seq;
  }

  bad.sort((a, b) => (a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0));
  const first = bad[0];
  return {
    ok: first === undefined,
    checked,
    checkpointsChecked,
    headSeq,
    firstBadSeq: first?.seq ?? null,
    reason: first?.reason ?? null,
  };
}
