// `custos mpc-node init | start | backup | restore`: one MPC node process. The node secret comes from
// CUSTOS_NODE_SECRET, CUSTOS_NODE_SECRET_FILE, --secret-file, or the cluster file's secretFile.
// Also registers the control-plane `mpc` subcommands of mpc-cluster.ts on the existing `mpc` command.

import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { createBus, natsOptionsOf, plaintextNatsWarning } from '../bus/index.ts';
import type { NetworkInput } from '../chains/networks.ts';
import { loadConfig } from '../config.ts';
import type { ProtocolMessage } from '../crypto/threshold.ts';
import { nodeChainDecoders } from '../custody/chains.ts';
import { devTestChains } from '../custody/test-chain.ts';
import { MpcError } from '../errors.ts';
import { createLogger } from '../log/logger.ts';
import { custodyApprovalAuthorizer, FileOwnerTrust } from '../mpc/authorizers/custody-approvals.ts';
import { type LoadedCluster, loadClusterFile, readSecretFile } from '../mpc/cluster.ts';
import { identityExists, initNodeIdentity, loadNodeIdentity } from '../mpc/identity.ts';
import { nodeDataDir, nodeSecret, openNode } from '../mpc/local.ts';
import type { MpcNodeOptions } from '../mpc/node.ts';
import { SecretKeyring, seal, writeFileDurable } from '../mpc/secure-file.ts';
import { openBackup, ShareStore } from '../mpc/share-store.ts';
import { registerMpcClusterCommands } from './mpc-cluster.ts';
import { fail, printJson } from './output.ts';

interface NodeCliOptions {
  id: string;
  dataDir?: string;
  cluster?: string;
  secretFile?: string;
  trustedOwners?: string;
  offline?: boolean;
  json?: boolean;
}

function nodeId(v: string): number {
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 255) {
    throw new MpcError('CUSTOS_MPC_BAD_REQUEST', '--id must be an integer 1..255');
  }
  return Number(v);
}

function clusterOf(o: NodeCliOptions): LoadedCluster | undefined {
  if (o.cluster) return loadClusterFile(o.cluster);
  if (o.dataDir && existsSync(join(resolve(o.dataDir), 'cluster.json'))) {
    return loadClusterFile(join(resolve(o.dataDir), 'cluster.json'));
  }
  return undefined;
}

function secretOf(o: NodeCliOptions, cluster: LoadedCluster | undefined, id: number): string {
  if (o.secretFile) return readSecretFile(o.secretFile);
  return nodeSecret(cluster, id);
}

/** Tests only (NODE_ENV=test): CUSTOS_TEST_MPC_CORRUPT=<protocol> makes this node a cheater. */
function testHooks(): MpcNodeOptions['testHooks'] | undefined {
  const protocol = process.env['CUSTOS_TEST_MPC_CORRUPT'];
  if (!protocol || process.env['NODE_ENV'] !== 'test') return undefined;
  return {
    outgoing: (m: ProtocolMessage) => {
      if (m.protocol !== protocol) return m;
      const p = m.payload.slice();
      p[p.length - 1]! ^= 1;
      return { ...m, payload: p };
    },
  };
}

export function registerMpcNodeCommands(program: Command): void {
  const mpc = program.commands.find((c) => c.name() === 'mpc');
  if (mpc) registerMpcClusterCommands(mpc);

  const node = program.command('mpc-node').description('an MPC node (one share per key, its own checks)');
  node
    .command('init')
    .description("create the node's Ed25519 identity and X25519 key, encrypted under the node secret")
    .requiredOption('--id <n>', 'node id (1..255)')
    .requiredOption('--data-dir <dir>', 'the node data directory')
    .option('--secret-file <file>', 'node secret file (created with a random secret, mode 0600, if missing)')
    .option('--json', 'machine-readable output')
    .action((o: NodeCliOptions) =>
      (async () => {
        const id = nodeId(o.id);
        let secret: string;
        let generated: string | undefined;
        if (o.secretFile && !existsSync(o.secretFile)) {
          writeFileDurable(resolve(o.secretFile), `${randomBytes(32).toString('hex')}\n`, 0o600);
          generated = resolve(o.secretFile);
        }
        if (o.secretFile) secret = readSecretFile(o.secretFile);
        else secret = nodeSecret(undefined, id);
        const identity = await initNodeIdentity(o.dataDir!, id, new SecretKeyring(secret));
        const out = {
          ...identity.public,
          dataDir: resolve(o.dataDir!),
          ...(generated ? { secretFile: generated } : {}),
        };
        identity.destroy();
        if (o.json) printJson(out);
        else
          process.stdout.write(
            `node ${out.id}\n  publicKey   ${out.publicKey}\n  dhPublicKey ${out.dhPublicKey}\n  (add these to the cluster file)\n${generated ? `  secret written to ${generated} (mode 0600): keep it apart from the data directory\n` : ''}`,
          );
      })().catch((e) => fail(e, o.json === true)),
    );

  node
    .command('start')
    .description('run the node (NATS from CUSTOS_NATS_URL)')
    .requiredOption('--id <n>', 'node id (1..255)')
    .option('--data-dir <dir>', 'the node data directory (reads DIR/cluster.json unless --cluster is given)')
    .option('--cluster <file>', 'cluster file (the node data directory comes from it unless given)')
    .option('--secret-file <file>', 'node secret file')
    .option(
      '--trusted-owners <file>',
      "owner keys this node's operator trusts, per organisation (default: DATA_DIR/trusted-owners.json; custos approve --trust-owner --trust-file)",
    )
    .option(
      '--offline',
      'a node of the offline cluster (air-gapped, its own NATS): signs cold-vault withdrawals only (custos offline-signer sign)',
    )
    .option('--json', 'machine-readable errors')
    .action((o: NodeCliOptions) =>
      (async () => {
        const id = nodeId(o.id);
        const cfg = loadConfig();
        const logger = createLogger({
          level: cfg.logLevel,
          format: cfg.logFormat,
          name: `custos-mpc-node-${id}`,
        });
        const cluster = clusterOf(o);
        if (!cluster) {
          throw new MpcError(
            'CUSTOS_MPC_NODE_STATE',
            'no cluster file: pass --cluster FILE or put cluster.json in --data-dir',
          );
        }
        if (!cfg.natsUrl)
          logger.warn({}, 'CUSTOS_NATS_URL is not set: this node is alone on an in-process bus');
        const plaintext = plaintextNatsWarning(cfg);
        if (plaintext) logger.warn({}, plaintext);
        const secret = secretOf(o, cluster, id);
        const bus = await createBus({
          ...natsOptionsOf(cfg),
          name: `custos-mpc-node-${id}`,
          logger,
        });
        let n: Awaited<ReturnType<typeof openNode>>;
        let trustFile = '';
        try {
          const hooks = testHooks();
          n = await openNode({
            cluster,
            id,
            bus,
            secret,
            ...(o.dataDir ? { dataDir: o.dataDir } : {}),
            logger,
            ...(hooks ? { testHooks: hooks } : {}),
          });
          // Custody withdrawals: the node verifies the evidence itself — the owner-signed vault
          // policy, owner-endorsed approvals, and the transaction decoded by its own adapters —
          // trusting only the owner keys its operator listed (evidence nobody checks is refused).
          trustFile = resolve(
            o.trustedOwners ?? join(nodeDataDir(cluster, id, o.dataDir), 'trusted-owners.json'),
          );
          n.addAuthorizer(
            custodyApprovalAuthorizer({
              trust: new FileOwnerTrust(trustFile),
              chains: nodeChainDecoders(
                cfg.networks as NetworkInput[],
                cfg.env === 'production' ? [] : devTestChains({}),
              ),
              offline: o.offline === true,
            }),
          );
          await n.start();
        } catch (e) {
          await bus.close();
          throw e;
        }
        process.stdout.write(
          `${JSON.stringify({ event: 'ready', node: id, keys: n.keys().length, trustedOwners: trustFile, offline: o.offline === true })}\n`,
        );
        let stopping = false;
        const stop = async () => {
          if (stopping) return;
          stopping = true;
          const t = setTimeout(() => process.exit(1), cfg.shutdownTimeoutMs);
          t.unref();
          await n.stop();
          await bus.close();
          logger.info({ node: id }, 'mpc node stopped');
          process.exit(0);
        };
        process.once('SIGTERM', () => void stop());
        process.once('SIGINT', () => void stop());
        // SIGHUP re-reads the cluster file: new or removed peers, a peer's new keys, a rotated
        // control-plane key. A bad file changes nothing and is logged.
        process.on('SIGHUP', () => {
          try {
            const changes = n.reloadCluster(loadClusterFile(cluster.path!));
            process.stdout.write(`${JSON.stringify({ event: 'cluster-reloaded', node: id, ...changes })}\n`);
          } catch (e) {
            logger.error({ err: e }, 'mpc node: cluster file not reloaded');
          }
        });
      })().catch((e) => fail(e, o.json === true)),
    );

  node
    .command('backup')
    .description("write the node's identity and shares to one encrypted file")
    .requiredOption('--id <n>', 'node id (1..255)')
    .requiredOption('--out <file>', 'backup file to write')
    .option('--data-dir <dir>', 'the node data directory')
    .option('--cluster <file>', 'cluster file')
    .option('--secret-file <file>', 'node secret file')
    .option('--backup-secret-file <file>', 'encrypt the backup under this secret instead of the node secret')
    .option('--json', 'machine-readable output')
    .action((o: NodeCliOptions & { out: string; backupSecretFile?: string }) =>
      (async () => {
        const id = nodeId(o.id);
        const cluster = clusterOf(o);
        const dataDir = cluster ? nodeDataDir(cluster, id, o.dataDir) : o.dataDir;
        if (!dataDir) throw new MpcError('CUSTOS_MPC_NODE_STATE', 'pass --data-dir or --cluster');
        const { identity, keyring } = await loadNodeIdentity(
          dataDir,
          id,
          new SecretKeyring(secretOf(o, cluster, id)),
        );
        const backupKeyring = o.backupSecretFile
          ? new SecretKeyring(readSecretFile(o.backupSecretFile))
          : new SecretKeyring(secretOf(o, cluster, id));
        const store = new ShareStore(dataDir, keyring);
        const sealed = await store.backup(identity, backupKeyring);
        writeFileDurable(resolve(o.out), sealed, 0o600);
        const out = { node: id, file: resolve(o.out), keys: store.keyIds() };
        identity.destroy();
        if (o.json) printJson(out);
        else process.stdout.write(`backup of node ${id} (${out.keys.length} keys) written to ${out.file}\n`);
      })().catch((e) => fail(e, o.json === true)),
    );

  node
    .command('restore')
    .description('recreate a node data directory from a backup file')
    .requiredOption('--id <n>', 'node id (1..255)')
    .requiredOption('--in <file>', 'backup file')
    .requiredOption('--data-dir <dir>', 'empty data directory to restore into')
    .option('--secret-file <file>', 'node secret file (the restored files are sealed under it)')
    .option('--backup-secret-file <file>', 'the backup was encrypted under this secret')
    .option('--json', 'machine-readable output')
    .action((o: NodeCliOptions & { in: string; backupSecretFile?: string }) =>
      (async () => {
        const id = nodeId(o.id);
        const dataDir = resolve(o.dataDir!);
        if (identityExists(dataDir)) {
          throw new MpcError(
            'CUSTOS_MPC_NODE_STATE',
            `${dataDir} already holds a node identity; restore into an empty directory`,
          );
        }
        const secret = secretOf(o, undefined, id);
        const backupKeyring = new SecretKeyring(
          o.backupSecretFile ? readSecretFile(o.backupSecretFile) : secret,
        );
        const b = await openBackup(new Uint8Array(readFileSync(o.in)), id, backupKeyring);
        const keyring = new SecretKeyring(secret);
        const secretBytes = b.identity.exportSecret();
        try {
          const { mkdirSync } = await import('node:fs');
          mkdirSync(dataDir, { recursive: true, mode: 0o700 });
          writeFileDurable(join(dataDir, 'identity.enc'), await seal(keyring, `identity:${id}`, secretBytes));
        } finally {
          secretBytes.fill(0);
        }
        writeFileDurable(
          join(dataDir, 'node.json'),
          `${JSON.stringify({ version: 1, ...b.identity.public }, null, 2)}\n`,
          0o644,
        );
        const { keyring: bound } = await loadNodeIdentity(dataDir, id, keyring);
        const store = new ShareStore(dataDir, bound);
        for (const s of b.shares) {
          await store.saveShare(s);
          s.share.fill(0);
          const lock = b.locks[s.meta.keyId];
          if (lock) store.lock(s.meta.keyId, lock);
        }
        const out = { node: id, dataDir, keys: b.shares.map((s) => s.meta.keyId) };
        b.identity.destroy();
        if (o.json) printJson(out);
        else process.stdout.write(`node ${id} restored into ${dataDir} (${out.keys.length} keys)\n`);
      })().catch((e) => fail(e, o.json === true)),
    );
}
