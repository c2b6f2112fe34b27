// `custos mpc cluster init | keygen | sign | status | refresh | reshare | unlock`: the operator and
// check commands of the control plane's side. They talk to the nodes over NATS (CUSTOS_NATS_URL)
// with the cluster file's control-plane key, and keep the key registry in keys.json next to it.
import type { Command } from 'commander';
import { type Bus, createBus, natsOptionsOf } from '../bus/index.ts';
import { loadConfig } from '../config.ts';
import { SCHEME_NAMES, type SchemeName } from '../crypto/threshold.ts';
import { MpcError } from '../errors.ts';
import type { MpcCoordinator } from '../mpc/client.ts';
import { createLocalCluster, type LoadedCluster, loadClusterFile } from '../mpc/cluster.ts';
import { openCoordinator } from '../mpc/local.ts';
import { fail, printJson } from './output.ts';

const HEX = /^([0-9a-fA-F]{2})*$/;

function parseHex(v: string, what: string): Uint8Array {
  const s = v.startsWith('0x') ? v.slice(2) : v;
  if (!HEX.test(s) || s.length === 0) throw new MpcError('CUSTOS_MPC_BAD_REQUEST', `${what}: expected hex`);
  return new Uint8Array(Buffer.from(s, 'hex'));
}

function parseInt10(v: string | undefined, what: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new MpcError('CUSTOS_MPC_BAD_REQUEST', `${what}: expected an integer`);
  return Number(v);
}

function parseIds(v: string, what: string): number[] {
  const ids = v.split(',').map((x) => parseInt10(x.trim(), what)!);
  if (ids.length === 0) throw new MpcError('CUSTOS_MPC_BAD_REQUEST', `${what}: empty list`);
  return ids;
}

/** Opens the coordinator on NATS (CUSTOS_NATS_URL), runs `fn`, closes everything. */
async function withCoordinator<T>(
  clusterFile: string,
  fn: (c: MpcCoordinator, cluster: LoadedCluster) => Promise<T>,
  opts: { waitForHeartbeats?: boolean } = {},
): Promise<T> {
  const cfg = loadConfig();
  const cluster = loadClusterFile(clusterFile);
  if (!cfg.natsUrl) {
    throw new MpcError(
      'CUSTOS_MPC_NODE_STATE',
      'CUSTOS_NATS_URL is not set: MPC nodes run as separate processes and are reached over NATS',
    );
  }
  const bus: Bus = await createBus({ ...natsOptionsOf(cfg), name: 'custos-mpc-cli' });
  try {
    const c = openCoordinator({ cluster, bus });
    await c.start();
    if (opts.waitForHeartbeats) {
      await new Promise((r) => setTimeout(r, Math.round(cluster.timeouts.heartbeatMs * 1.5)));
    }
    try {
      return await fn(c, cluster);
    } finally {
      await c.stop();
    }
  } finally {
    await bus.close();
  }
}

function run(json: boolean | undefined, fn: () => Promise<void>): Promise<void> {
  return fn().catch((e) => fail(e, json === true));
}

export function registerMpcClusterCommands(mpc: Command): void {
  const cluster = mpc.command('cluster').description('MPC cluster files');
  cluster
    .command('init')
    .description('write a ready local cluster: node data dirs and identities, cluster.json, secrets (0600)')
    .requiredOption('--nodes <n>', 'number of nodes')
    .requiredOption('--threshold <t>', 'default signing threshold')
    .requiredOption('--dir <dir>', 'directory to create the cluster in')
    .option('--namespace <ns>', 'subject namespace, so several clusters can share one NATS')
    .option('--pool-size <n>', 'presignatures kept ready per key and signer set', '16')
    .option('--json', 'machine-readable output')
    .action(
      (o: {
        nodes: string;
        threshold: string;
        dir: string;
        namespace?: string;
        poolSize: string;
        json?: boolean;
      }) =>
        run(o.json, async () => {
          const c = await createLocalCluster({
            dir: o.dir,
            nodes: parseInt10(o.nodes, '--nodes')!,
            threshold: parseInt10(o.threshold, '--threshold')!,
            poolSize: parseInt10(o.poolSize, '--pool-size')!,
            ...(o.namespace ? { namespace: o.namespace } : {}),
          });
          const out = {
            cluster: c.path,
            threshold: c.threshold,
            controlPlanePublicKey: c.controlPlane.publicKey,
            nodes: c.nodes.map((n) => ({
              id: n.id,
              publicKey: n.publicKey,
              dhPublicKey: n.dhPublicKey,
              dataDir: n.dataDir,
            })),
          };
          if (o.json) printJson(out);
          else {
            process.stdout.write(
              [
                `cluster file  ${out.cluster}`,
                `secrets       ${o.dir}/secrets/ (mode 0600)`,
                ...out.nodes.map((n) => `node ${n.id}        ${n.publicKey}  (${n.dataDir})`),
                `start a node: custos mpc-node start --id 1 --cluster ${out.cluster}`,
                '',
              ].join('\n'),
            );
          }
        }),
    );

  mpc
    .command('keygen')
    .description('create a threshold key (DKG among the cluster nodes)')
    .requiredOption('--cluster <file>', 'cluster.json')
    .requiredOption('--scheme <scheme>', `one of ${SCHEME_NAMES.join(', ')}`)
    .option('--threshold <t>', 'signers needed (default: the cluster file threshold)')
    .option('--nodes <n>', 'committee size (default: every node)')
    .option('--allow-raw-signing', 'allow signing raw digests without authorisation evidence (tests, demos)')
    .option('--key-id <id>', 'key id (default: generated)')
    .option('--json', 'machine-readable output')
    .action(
      (o: {
        cluster: string;
        scheme: string;
        threshold?: string;
        nodes?: string;
        allowRawSigning?: boolean;
        keyId?: string;
        json?: boolean;
      }) =>
        run(o.json, async () => {
          if (!SCHEME_NAMES.includes(o.scheme as SchemeName)) {
            throw new MpcError(
              'CUSTOS_MPC_BAD_REQUEST',
              `--scheme must be one of ${SCHEME_NAMES.join(', ')}`,
            );
          }
          const rec = await withCoordinator(o.cluster, (c, cl) =>
            c.createKey(
              o.scheme as SchemeName,
              parseInt10(o.threshold, '--threshold') ?? cl.threshold,
              parseInt10(o.nodes, '--nodes') ?? cl.nodes.length,
              { allowRawSigning: o.allowRawSigning === true, ...(o.keyId ? { keyId: o.keyId } : {}) },
            ),
          );
          const out = {
            keyId: rec.keyId,
            scheme: rec.scheme,
            threshold: rec.threshold,
            parties: rec.parties.length,
            committee: rec.parties,
            publicKey: rec.publicKey,
            chainCode: rec.chainCode,
            ...(rec.xpub ? { xpub: rec.xpub } : {}),
          };
          if (o.json) printJson(out);
          else
            process.stdout.write(
              `${out.keyId} ${out.scheme} ${out.threshold}-of-${out.parties} ${out.publicKey}\n`,
            );
        }),
    );

  mpc
    .command('sign')
    .description('sign a digest (ECDSA) or message (Ed25519/BIP340) with a threshold key')
    .requiredOption('--cluster <file>', 'cluster.json')
    .requiredOption('--key <id>', 'key id')
    .option('--digest <hex>', 'ECDSA: the 32-byte digest to sign')
    .option('--message <hex>', 'Ed25519/BIP340: the message to sign')
    .option('--derive <path>', 'non-hardened derivation path, e.g. m/0/7')
    .option('--timeout-ms <ms>', 'give up after this long')
    .option('--json', 'machine-readable output')
    .action(
      (o: {
        cluster: string;
        key: string;
        digest?: string;
        message?: string;
        derive?: string;
        timeoutMs?: string;
        json?: boolean;
      }) =>
        run(o.json, async () => {
          if ((o.digest === undefined) === (o.message === undefined)) {
            throw new MpcError('CUSTOS_MPC_BAD_REQUEST', 'give exactly one of --digest or --message');
          }
          const r = await withCoordinator(o.cluster, async (c) => {
            const rec = c.getKey(o.key);
            if (rec.scheme === 'ecdsa-secp256k1' && o.digest === undefined) {
              throw new MpcError('CUSTOS_MPC_BAD_REQUEST', 'ECDSA signs a 32-byte --digest you computed');
            }
            const bytes = parseHex((o.digest ?? o.message)!, o.digest ? '--digest' : '--message');
            const timeoutMs = parseInt10(o.timeoutMs, '--timeout-ms');
            return c.sign(o.key, bytes, {
              ...(o.derive ? { path: o.derive } : {}),
              ...(timeoutMs ? { timeoutMs } : {}),
            });
          });
          const sig = Buffer.from(r.signature, 'hex');
          const out = {
            keyId: r.keyId,
            scheme: r.scheme,
            threshold: r.threshold,
            parties: r.parties,
            signers: r.signers,
            publicKey: r.publicKey,
            ...(r.xpub ? { xpub: r.xpub } : {}),
            derivationPath: r.derivationPath,
            signingPublicKey: r.signingPublicKey,
            signature:
              r.scheme === 'ecdsa-secp256k1'
                ? {
                    r: sig.subarray(0, 32).toString('hex'),
                    s: sig.subarray(32, 64).toString('hex'),
                    recovery: r.recovery,
                  }
                : r.signature,
            timingsMs: { sign: r.latencyMs },
            latencyMs: r.latencyMs,
          };
          if (o.json) printJson(out);
          else
            process.stdout.write(
              `${out.scheme} ${out.threshold}-of-${out.parties} signers ${out.signers.join(',')} in ${out.latencyMs} ms\nsignature ${r.signature}\n`,
            );
        }),
    );

  mpc
    .command('status')
    .description('nodes (up/down, last seen), keys and presignature pools')
    .requiredOption('--cluster <file>', 'cluster.json')
    .option('--json', 'machine-readable output')
    .action((o: { cluster: string; json?: boolean }) =>
      run(o.json, async () => {
        const s = await withCoordinator(o.cluster, (c) => c.status(), { waitForHeartbeats: true });
        const out = {
          nodes: s.nodes.map((n) => ({
            id: n.id,
            up: n.up,
            lastSeen: n.lastSeen,
            keys: n.keys.length,
            pools: n.pools,
          })),
          keys: s.keys.map((k) => ({
            keyId: k.keyId,
            scheme: k.scheme,
            threshold: k.threshold,
            parties: k.parties.length,
            committee: k.parties,
            publicKey: k.publicKey,
            generation: k.generation,
            locked: k.locked ?? null,
            pools: Object.fromEntries(
              s.nodes.filter((n) => n.pools[k.keyId]).map((n) => [String(n.id), n.pools[k.keyId]]),
            ),
          })),
        };
        if (o.json) printJson(out);
        else {
          for (const n of out.nodes) {
            process.stdout.write(
              `node ${n.id}  ${n.up ? 'up  ' : 'DOWN'}  last seen ${n.lastSeen ?? 'never'}\n`,
            );
          }
          for (const k of out.keys) {
            process.stdout.write(
              `${k.keyId}  ${k.scheme}  ${k.threshold}-of-${k.parties}  gen ${k.generation}${k.locked ? '  LOCKED' : ''}  ${k.publicKey}\n`,
            );
          }
        }
      }),
    );

  mpc
    .command('refresh')
    .description('new shares for the same key (every committee node must be up)')
    .requiredOption('--cluster <file>', 'cluster.json')
    .requiredOption('--key <id>', 'key id')
    .option('--json', 'machine-readable output')
    .action((o: { cluster: string; key: string; json?: boolean }) =>
      run(o.json, async () => {
        const r = await withCoordinator(o.cluster, (c) => c.refresh(o.key));
        printJson({ keyId: r.keyId, generation: r.generation, publicKey: r.publicKey });
      }),
    );

  mpc
    .command('reshare')
    .description('move a key to a new committee and/or threshold (same public key); clears a lock')
    .requiredOption('--cluster <file>', 'cluster.json')
    .requiredOption('--key <id>', 'key id')
    .requiredOption('--committee <ids>', 'new committee, e.g. 1,3,4')
    .requiredOption('--threshold <t>', 'new threshold')
    .option('--json', 'machine-readable output')
    .action((o: { cluster: string; key: string; committee: string; threshold: string; json?: boolean }) =>
      run(o.json, async () => {
        const r = await withCoordinator(o.cluster, (c) =>
          c.reshare(o.key, {
            committee: parseIds(o.committee, '--committee'),
            threshold: parseInt10(o.threshold, '--threshold')!,
          }),
        );
        printJson({
          keyId: r.keyId,
          generation: r.generation,
          threshold: r.threshold,
          committee: r.parties,
          publicKey: r.publicKey,
        });
      }),
    );

  mpc
    .command('unlock')
    .description('clear a key lock on the coordinator and every node (after an investigation)')
    .requiredOption('--cluster <file>', 'cluster.json')
    .requiredOption('--key <id>', 'key id')
    .option('--json', 'machine-readable output')
    .action((o: { cluster: string; key: string; json?: boolean }) =>
      run(o.json, async () => {
        const r = await withCoordinator(o.cluster, (c) => c.unlock(o.key));
        printJson({ keyId: r.keyId, locked: false });
      }),
    );
}
