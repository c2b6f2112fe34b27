// `custos offline-signer keygen | sign`: the offline cluster on an air-gapped host (DESIGN §1).
// The cluster directory is made by `custos mpc cluster init --dir DIR` on that host; its nodes run
// in this process, each with its own encrypted share store and secret, and nothing is networked —
// or, with CUSTOS_NATS_URL set to the offline LAN's own NATS, they are `custos mpc-node start
// --offline` processes on several offline machines (each with its own trusted-owners file).
//
//   keygen  DKG among the offline nodes; prints the key's public half for POST /v1/vaults
//           (tier cold, offlineKeys). Keys are made without raw signing: they sign withdrawals only.
//   sign    reads a signing request (`custos cold export`), has every node check its evidence
//           itself — the vault policy and approvals signed by owner keys the operator trusts
//           (DIR/trusted-owners.json, `custos approve --trust-owner --trust-file`), the transaction
//           decoded by the node's own chain decoder, the digests and path, the expiry, a cold vault —
//           signs, verifies, and writes the signatures file to carry back (`custos cold import`).
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { createBus, natsOptionsOf } from '../bus/index.ts';
import type { NetworkInput } from '../chains/networks.ts';
import { loadConfig } from '../config.ts';
import { SCHEME_NAMES, type SchemeName } from '../crypto/threshold.ts';
import { nodeChainDecoders } from '../custody/chains.ts';
import {
  OFFLINE_SIGNATURES_KIND,
  type OfflineSignatures,
  signingRequestSchema,
} from '../custody/offline-signing.ts';
import { devTestChains } from '../custody/test-chain.ts';
import { MpcError } from '../errors.ts';
import { custodyApprovalAuthorizer, FileOwnerTrust } from '../mpc/authorizers/custody-approvals.ts';
import type { MpcCoordinator } from '../mpc/client.ts';
import { type LoadedCluster, loadClusterFile } from '../mpc/cluster.ts';
import { openCoordinator, startInProcessCluster } from '../mpc/local.ts';
import { writeAtomic } from '../roles/data-dir.ts';
import { readJsonFile } from './json-file.ts';
import { fail, printJson } from './output.ts';

interface OfflineOptions {
  dir: string;
  json?: boolean;
}

interface OfflineCluster {
  coordinator: MpcCoordinator;
  cluster: LoadedCluster;
}

/**
 * Opens the offline cluster in DIR (never creates one: that is `custos mpc cluster init`): its nodes
 * in this process, each with the offline authoriser; or, with CUSTOS_NATS_URL set (the offline LAN's
 * own NATS), a coordinator for `custos mpc-node start --offline` processes on the offline machines.
 */
async function withOfflineCluster<T>(
  dir: string,
  trustedOwners: string | undefined,
  fn: (c: OfflineCluster) => Promise<T>,
): Promise<T> {
  const root = resolve(dir);
  const file = join(root, 'cluster.json');
  if (!existsSync(file)) {
    throw new MpcError(
      'CUSTOS_MPC_NODE_STATE',
      `${root}: no cluster.json (create the offline cluster with custos mpc cluster init --dir ${dir})`,
    );
  }
  const cfg = loadConfig();
  if (cfg.natsUrl) {
    const cluster = loadClusterFile(file);
    const bus = await createBus({ ...natsOptionsOf(cfg), name: 'custos-offline-signer' });
    try {
      const coordinator = openCoordinator({ cluster, bus });
      await coordinator.start();
      // The nodes announce themselves by heartbeat; sign once they all have (or the wait is over).
      const until = Date.now() + 2 * cluster.timeouts.heartbeatMs;
      while (!cluster.nodes.every((n) => coordinator.heartbeats().has(n.id)) && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 50));
      }
      try {
        return await fn({ coordinator, cluster });
      } finally {
        await coordinator.stop();
      }
    } finally {
      await bus.close();
    }
  }
  if (trustedOwners && !existsSync(trustedOwners)) {
    throw new MpcError(
      'CUSTOS_MPC_NODE_STATE',
      `${trustedOwners}: no trusted owner keys, so no withdrawal can be authorised (custos approve --trust-owner --org ORG --public-key OWNER_PUBLIC_KEY --trust-file ${trustedOwners})`,
    );
  }
  const authorizers = trustedOwners
    ? [
        custodyApprovalAuthorizer({
          trust: new FileOwnerTrust(trustedOwners),
          chains: nodeChainDecoders(
            cfg.networks as NetworkInput[],
            cfg.env === 'production' ? [] : devTestChains({}),
          ),
          offline: true,
        }),
      ]
    : [];
  // No presignature pool: this process signs what it was brought and exits.
  const c = await startInProcessCluster({ dir: root, poolSize: 0, nodeOptions: () => ({ authorizers }) });
  try {
    return await fn(c);
  } finally {
    await c.stop();
  }
}

const unhex = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));

export function registerOfflineSignerCommands(program: Command): void {
  const off = program
    .command('offline-signer')
    .description('the offline cluster on an air-gapped host: cold keys and cold-vault withdrawals');

  off
    .command('keygen')
    .description('create a cold key by DKG among the offline nodes; prints its public half (offlineKeys)')
    .requiredOption('--dir <dir>', 'the offline cluster directory (custos mpc cluster init --dir)')
    .requiredOption('--scheme <scheme>', `one of ${SCHEME_NAMES.join(', ')}`)
    .option('--threshold <t>', 'signers needed (default: the cluster file threshold)')
    .option('--nodes <n>', 'committee size (default: every node)')
    .option('--json', 'machine-readable output')
    .action((o: OfflineOptions & { scheme: string; threshold?: string; nodes?: string }) =>
      (async () => {
        if (!SCHEME_NAMES.includes(o.scheme as SchemeName))
          throw new MpcError('CUSTOS_MPC_BAD_REQUEST', `--scheme must be one of ${SCHEME_NAMES.join(', ')}`);
        const int = (v: string | undefined, what: string) => {
          if (v === undefined) return undefined;
          if (!/^\d+$/.test(v)) throw new MpcError('CUSTOS_MPC_BAD_REQUEST', `${what}: expected an integer`);
          return Number(v);
        };
        const rec = await withOfflineCluster(o.dir, undefined, (c) =>
          c.coordinator.createKey(
            o.scheme as SchemeName,
            int(o.threshold, '--threshold') ?? c.cluster.threshold,
            int(o.nodes, '--nodes') ?? c.cluster.nodes.length,
          ),
        );
        const out = {
          keyId: rec.keyId,
          scheme: rec.scheme,
          publicKey: rec.publicKey,
          chainCode: rec.chainCode,
          threshold: rec.threshold,
          parties: rec.parties,
          ...(rec.xpub ? { xpub: rec.xpub } : {}),
        };
        if (o.json) printJson(out);
        else
          process.stdout.write(
            `${out.keyId} ${out.scheme} ${out.threshold}-of-${out.parties.length} ${out.publicKey}\n` +
              'give the platform its public half: POST /v1/vaults {"tier":"cold","offlineKeys":[…]} (--json prints it)\n',
          );
      })().catch((e) => fail(e, o.json === true)),
    );

  off
    .command('sign')
    .description('check a signing request on every offline node, sign it, write the signatures file')
    .requiredOption('--dir <dir>', 'the offline cluster directory')
    .requiredOption('--request <file>', 'the signing request (custos cold export)')
    .requiredOption('--out <file>', 'the signatures file to write (carry it back: custos cold import)')
    .option(
      '--trusted-owners <file>',
      'in-process nodes: owner keys the offline operators trust, per organisation (default: DIR/trusted-owners.json)',
    )
    .option('--json', 'machine-readable output')
    .action((o: OfflineOptions & { request: string; out: string; trustedOwners?: string }) =>
      (async () => {
        const req = readJsonFile(o.request, signingRequestSchema, 'a signing request');
        const trust = resolve(o.trustedOwners ?? join(resolve(o.dir), 'trusted-owners.json'));
        const intent = req.evidence.intent;
        const summary = {
          transactionId: req.transactionId,
          network: intent.network,
          asset: intent.asset.symbol,
          decimals: intent.asset.decimals,
          amount: intent.amount,
          source: intent.source.address,
          destination: intent.destination,
          approvals: req.evidence.approvals.length,
          expiresAt: intent.expiresAt,
        };
        if (!o.json)
          process.stderr.write(
            `signing ${summary.amount} (base units, ${summary.decimals} decimals) ${summary.asset} on ${summary.network}\n` +
              `  from ${summary.source}\n  to   ${summary.destination}\n` +
              `  ${summary.approvals} approval(s) in the request; every node checks them itself\n`,
          );
        const signed = await withOfflineCluster(o.dir, trust, async (c) => {
          const out: OfflineSignatures['signatures'] = [];
          let signers: number[] = [];
          for (const d of req.digests) {
            const r = await c.coordinator.sign(req.keyId, unhex(d), {
              path: req.derivationPath,
              authorization: req.evidence,
            });
            if (r.signingPublicKey !== req.signingPublicKey) {
              throw new MpcError(
                'CUSTOS_MPC_BAD_REQUEST',
                `key ${req.keyId} at ${req.derivationPath} is ${r.signingPublicKey}, the request names ${req.signingPublicKey}`,
              );
            }
            out.push({
              digest: d,
              signature: r.signature,
              ...(r.recovery !== undefined ? { recovery: r.recovery as 0 | 1 } : {}),
            });
            signers = r.signers;
          }
          return { out, signers };
        });
        const doc: OfflineSignatures = {
          kind: OFFLINE_SIGNATURES_KIND,
          transactionId: req.transactionId,
          intentHash: req.evidence.intentHash,
          keyId: req.keyId,
          derivationPath: req.derivationPath,
          signatures: signed.out,
          signers: signed.signers,
          signedAt: new Date().toISOString(),
        };
        const file = resolve(o.out);
        writeAtomic(file, `${JSON.stringify(doc, null, 2)}\n`, 0o600);
        if (o.json) printJson({ ...summary, file, signatures: doc.signatures.length, signers: doc.signers });
        else process.stdout.write(`signatures written to ${file} (signers ${doc.signers?.join(', ')})\n`);
      })().catch((e) => fail(e, o.json === true)),
    );
}
