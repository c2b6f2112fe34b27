// Chain tests' signer: a 2-of-3 DKLs23 key on a real in-process MPC cluster (three nodes, each with
// its own data directory, secret and bus connection, plus the coordinator — src/mpc/local.ts). Every
// signature is requested from the coordinator, run by the nodes, and verified by the coordinator under
// the derived public key before it comes back; nothing here holds a share or signs by itself.
//
//   const signer = await startMpcSigner();
//   const address = adapter.deriveAddress(signer.publicKey('m/0/1'));
//   const sigs = await Promise.all(tx.digests.map((d) => signer.sign(d.digest, 'm/0/1')));
//   await signer.stop(); // in `after`
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChainSignature } from '../../src/chains/types.ts';
import { SCHEMES } from '../../src/crypto/schemes.ts';
import { type InProcessCluster, startInProcessCluster } from '../../src/mpc/local.ts';
import type { KeyRecord } from '../../src/mpc/registry.ts';

export interface MpcSignerOptions {
  /** Presignatures each node keeps ready per signer set (default 2). */
  poolSize?: number;
  /** Force the signing nodes (e.g. [1, 3]); default: the coordinator picks the lowest-id live nodes. */
  signers?: number[];
  /** Per-signature timeout (default: the cluster's signMs). */
  timeoutMs?: number;
}

export interface MpcSigner {
  readonly cluster: InProcessCluster;
  readonly key: KeyRecord;
  /** Compressed child public key at a non-hardened path, derived from the key's public key and chain code. */
  publicKey(path?: string): Uint8Array;
  /** One threshold signing session through the coordinator, as the chain adapters take it. */
  sign(digest: Uint8Array, path?: string): Promise<ChainSignature>;
  /** Signatures returned by the coordinator so far. */
  readonly signatureCount: number;
  /** How those signatures got their presignature ('pool', 'inline'), as the coordinator reports it. */
  readonly presignatureSources: Readonly<Record<string, number>>;
  stop(): Promise<void>;
}

export async function startMpcSigner(o: MpcSignerOptions = {}): Promise<MpcSigner> {
  const dir = mkdtempSync(join(tmpdir(), 'custos-mpc-signer-'));
  let cluster: InProcessCluster | undefined;
  try {
    cluster = await startInProcessCluster({
      dir,
      kdf: { memoryCost: 1024, timeCost: 1 },
      poolSize: o.poolSize ?? 2,
    });
    const key = await cluster.coordinator.createKey('ecdsa-secp256k1', 2, 3, { allowRawSigning: true });
    const info = {
      scheme: key.scheme,
      threshold: key.threshold,
      parties: key.parties,
      publicKey: new Uint8Array(Buffer.from(key.publicKey, 'hex')),
      chainCode: new Uint8Array(Buffer.from(key.chainCode, 'hex')),
    };
    const c = cluster;
    let count = 0;
    const sources: Record<string, number> = {};
    return {
      cluster: c,
      key,
      publicKey: (path = 'm') => SCHEMES['ecdsa-secp256k1'].derivePublicKey(info, path),
      async sign(digest, path = 'm') {
        const r = await c.coordinator.sign(key.keyId, digest, {
          path,
          ...(o.signers ? { signers: o.signers } : {}),
          ...(o.timeoutMs ? { timeoutMs: o.timeoutMs } : {}),
        });
        count++;
        const source = r.presignature ?? 'none';
        sources[source] = (sources[source] ?? 0) + 1;
        // As src/custody/withdrawals.ts turns a coordinator result into a chain signature.
        return {
          signature: new Uint8Array(Buffer.from(r.signature, 'hex')),
          ...(r.recovery !== undefined ? { recovery: r.recovery } : {}),
        };
      },
      get signatureCount() {
        return count;
      },
      get presignatureSources() {
        return { ...sources };
      },
      async stop() {
        try {
          await c.stop();
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      },
    };
  } catch (e) {
    await cluster?.stop().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}
