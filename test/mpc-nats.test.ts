// MPC nodes as separate processes over real NATS (CUSTOS_TEST_NATS_URL): three `custos mpc-node start`
// processes, a 2-of-3 ECDSA and an Ed25519 key, 100 signatures each verified with OpenSSL, SIGKILL of
// one node during the run (the other two carry on), of a second (fail closed with a timeout, no
// signature), restart (signing resumes, same key), the CLI contracts, a replayed envelope on the wire,
// a wrong node secret, and a cheating node process. In-process equivalents: mpc-node.test.ts.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { createHash, createPublicKey, verify as osslVerify, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Bus, createBus } from '../src/bus/index.ts';
import { MpcError } from '../src/errors.ts';
import { p2pSubject } from '../src/mpc/channel.ts';
import type { MpcCoordinator } from '../src/mpc/client.ts';
import { createLocalCluster, type LoadedCluster } from '../src/mpc/cluster.ts';
import { decodeEnvelope } from '../src/mpc/envelope.ts';
import { openCoordinator } from '../src/mpc/local.ts';
import { requestSubject } from '../src/mpc/wire.ts';
import { runCli, spawnCli, waitExit } from './helpers/cli.ts';

const NATS = process.env['CUSTOS_TEST_NATS_URL'];
const skip = NATS ? false : 'CUSTOS_TEST_NATS_URL is not set (needs a NATS server)';

const sha256 = (b: Uint8Array) => new Uint8Array(createHash('sha256').update(b).digest());

function verifyOpenSsl(scheme: string, publicKeyHex: string, message: Uint8Array, sigHex: string): boolean {
  const pub = Buffer.from(publicKeyHex, 'hex');
  const sig = Buffer.from(sigHex, 'hex');
  if (scheme === 'eddsa-ed25519') {
    const key = createPublicKey({
      key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), pub]),
      format: 'der',
      type: 'spki',
    });
    return osslVerify(null, message, key, sig);
  }
  const spki = Buffer.concat([Buffer.from('3036301006072a8648ce3d020106052b8104000a032200', 'hex'), pub]);
  const key = createPublicKey({ key: spki, format: 'der', type: 'spki' });
  // `message` is the preimage; OpenSSL hashes it with SHA-256 itself.
  return osslVerify('sha256', message, { key, dsaEncoding: 'ieee-p1363' }, sig);
}

interface NodeProc {
  proc: ChildProcess;
  out: string[];
}

describe('MPC nodes as processes over NATS', { skip }, () => {
  let dir: string;
  let cluster: LoadedCluster;
  let bus: Bus;
  let coord: MpcCoordinator;
  const nodes = new Map<number, NodeProc>();
  let ecdsaKey: string;
  let edKey: string;
  const env = () => ({ CUSTOS_NATS_URL: NATS!, CUSTOS_LOG_LEVEL: 'warn', NODE_ENV: 'test' });

  async function startNode(id: number, extra: Record<string, string> = {}): Promise<NodeProc> {
    const proc = spawnCli(['mpc-node', 'start', '--id', String(id), '--cluster', cluster.path!], {
      ...env(),
      ...extra,
    });
    const np: NodeProc = { proc, out: [] };
    let buf = '';
    proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let i = buf.indexOf('\n');
      while (i >= 0) {
        np.out.push(buf.slice(0, i));
        buf = buf.slice(i + 1);
        i = buf.indexOf('\n');
      }
    });
    proc.stderr!.on('data', (d: Buffer) => np.out.push(d.toString()));
    // Generous: three processes load and derive their Argon2id keys at once on a 2-core machine.
    const end = Date.now() + 60_000;
    while (!np.out.some((l) => l.includes('"event":"ready"'))) {
      if (proc.exitCode !== null) assert.fail(`node ${id} exited: ${np.out.join('\n')}`);
      if (Date.now() > end) {
        proc.kill('SIGKILL'); // not left running after the suite gives up on it
        assert.fail(`node ${id} did not become ready: ${np.out.join('\n')}`);
      }
      await sleep(25);
    }
    nodes.set(id, np);
    return np;
  }

  async function kill(id: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const np = nodes.get(id);
    if (!np) return;
    np.proc.kill(signal);
    await waitExit(np.proc);
    nodes.delete(id);
  }

  async function waitHeartbeats(ids: number[]): Promise<void> {
    const end = Date.now() + 10_000;
    while (!ids.every((id) => coord.heartbeats().has(id))) {
      if (Date.now() > end) assert.fail('no heartbeats');
      await sleep(50);
    }
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'custos-mpc-nats-'));
    cluster = await createLocalCluster({
      dir,
      nodes: 3,
      threshold: 2,
      poolSize: 8,
      namespace: `t${randomBytes(6).toString('hex')}`,
    });
    await Promise.all([1, 2, 3].map((id) => startNode(id)));
    bus = await createBus({ natsUrl: NATS!, name: 'mpc-nats-test' });
    coord = openCoordinator({ cluster, bus });
    await coord.start();
  });

  after(async () => {
    for (const id of [...nodes.keys()]) await kill(id, 'SIGTERM');
    await coord?.stop();
    await bus?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a node started with the wrong secret refuses to start', () => {
    const r = runCli(['mpc-node', 'start', '--id', '3', '--cluster', cluster.path!, '--json'], {
      ...env(),
      CUSTOS_NODE_SECRET: 'f'.repeat(64),
    });
    assert.notEqual(r.code, 0);
    const j = JSON.parse(r.stdout.trim().split('\n').pop()!);
    assert.equal(j.error.code, 'CUSTOS_MPC_SECRET_INVALID');
    assert.match(j.error.message, /refusing to start/);
  });

  test('CLI: keygen for ECDSA and Ed25519 (2-of-3), sign with the documented JSON fields', () => {
    const k1 = runCli(
      [
        'mpc',
        'keygen',
        '--cluster',
        cluster.path!,
        '--scheme',
        'ecdsa-secp256k1',
        '--allow-raw-signing',
        '--json',
      ],
      env(),
    );
    assert.equal(k1.code, 0, k1.stdout + k1.stderr);
    const e = JSON.parse(k1.stdout);
    assert.deepEqual(
      Object.keys(e).filter((k) =>
        ['keyId', 'scheme', 'threshold', 'parties', 'publicKey', 'xpub'].includes(k),
      ).length,
      6,
    );
    assert.equal(e.threshold, 2);
    assert.equal(e.parties, 3);
    ecdsaKey = e.keyId;
    const k2 = runCli(
      [
        'mpc',
        'keygen',
        '--cluster',
        cluster.path!,
        '--scheme',
        'eddsa-ed25519',
        '--allow-raw-signing',
        '--json',
      ],
      env(),
    );
    assert.equal(k2.code, 0, k2.stdout + k2.stderr);
    edKey = JSON.parse(k2.stdout).keyId;

    const pre = randomBytes(64);
    const s = runCli(
      [
        'mpc',
        'sign',
        '--cluster',
        cluster.path!,
        '--key',
        ecdsaKey,
        '--digest',
        Buffer.from(sha256(pre)).toString('hex'),
        '--derive',
        'm/0/7',
        '--json',
      ],
      env(),
    );
    assert.equal(s.code, 0, s.stdout + s.stderr);
    const j = JSON.parse(s.stdout);
    for (const f of [
      'scheme',
      'threshold',
      'parties',
      'signers',
      'publicKey',
      'xpub',
      'derivationPath',
      'signingPublicKey',
      'signature',
      'latencyMs',
    ]) {
      assert.ok(f in j, `field ${f}`);
    }
    assert.equal(j.derivationPath, 'm/0/7');
    assert.equal(j.signers.length, 2);
    assert.ok(verifyOpenSsl('ecdsa-secp256k1', j.signingPublicKey, pre, j.signature.r + j.signature.s));
    const m = runCli(
      ['mpc', 'sign', '--cluster', cluster.path!, '--key', edKey, '--message', '68656c6c6f', '--json'],
      env(),
    );
    assert.equal(m.code, 0, m.stdout + m.stderr);
    const jm = JSON.parse(m.stdout);
    assert.ok(verifyOpenSsl('eddsa-ed25519', jm.signingPublicKey, Buffer.from('hello'), jm.signature));
  });

  test('100 signatures per key verify with OpenSSL; SIGKILL of one node mid-run does not stop signing', async () => {
    await waitHeartbeats([1, 2, 3]);
    const ecdsaPub = coord.getKey(ecdsaKey).publicKey;
    const edPub = coord.getKey(edKey).publicKey;
    let afterKill = 0;
    for (let i = 0; i < 100; i++) {
      if (i === 40) await kill(1);
      const pre = randomBytes(48);
      const a = await coord.sign(ecdsaKey, sha256(pre));
      assert.ok(verifyOpenSsl('ecdsa-secp256k1', a.signingPublicKey, pre, a.signature), `ecdsa ${i}`);
      assert.equal(a.signingPublicKey, ecdsaPub);
      const msg = randomBytes(48);
      const b = await coord.sign(edKey, msg);
      assert.ok(verifyOpenSsl('eddsa-ed25519', b.signingPublicKey, msg, b.signature), `ed25519 ${i}`);
      assert.equal(b.signingPublicKey, edPub);
      if (i >= 40) {
        assert.ok(!a.signers.includes(1) && !b.signers.includes(1));
        afterKill++;
      }
    }
    assert.equal(afterKill, 60);
  });

  test('a replayed envelope on the wire is rejected and reported by the node', async () => {
    const captured: Uint8Array[] = [];
    const sub = await bus.subscribe(p2pSubject(3, cluster.namespace), (m) => {
      captured.push(m.data);
    });
    await coord.sign(edKey, randomBytes(16));
    await sub.unsubscribe();
    const env2 = captured.find((b) => decodeEnvelope(b).from === 2);
    assert.ok(env2, 'captured an envelope from node 2 to node 3');
    await bus.publish(p2pSubject(3, cluster.namespace), env2);
    const end = Date.now() + 5000;
    while (!nodes.get(3)!.out.some((l) => l.includes('"kind":"replay"'))) {
      if (Date.now() > end) assert.fail(`no replay event in node 3's log:\n${nodes.get(3)!.out.join('\n')}`);
      await sleep(25);
    }
  });

  test('SIGKILL of a second node: requests fail closed with a timeout error and no signature', async () => {
    await kill(2);
    const t0 = Date.now();
    await assert.rejects(coord.sign(ecdsaKey, randomBytes(32)), (e: unknown) => {
      assert.ok(e instanceof MpcError);
      assert.equal(e.code, 'CUSTOS_MPC_TIMEOUT');
      assert.match(e.message, /nothing was signed/);
      return true;
    });
    assert.ok(Date.now() - t0 < 15_000);
    const r = runCli(
      ['mpc', 'sign', '--cluster', cluster.path!, '--key', edKey, '--message', '00', '--json'],
      env(),
    );
    assert.notEqual(r.code, 0);
    const j = JSON.parse(r.stdout.trim());
    assert.equal(j.error.code, 'CUSTOS_MPC_TIMEOUT');
    assert.equal(typeof j.error.message, 'string');
    assert.equal(j.signature, undefined);
  });

  test('restarted nodes rejoin and signing resumes without a new key', async () => {
    await Promise.all([startNode(1), startNode(2)]);
    await waitHeartbeats([1, 2, 3]);
    await sleep(1500); // heartbeats from the restarted nodes supersede the "down" marks
    const pre = randomBytes(40);
    const a = await coord.sign(ecdsaKey, sha256(pre));
    assert.ok(verifyOpenSsl('ecdsa-secp256k1', a.signingPublicKey, pre, a.signature));
    const msg = randomBytes(40);
    const b = await coord.sign(edKey, msg);
    assert.ok(verifyOpenSsl('eddsa-ed25519', b.signingPublicKey, msg, b.signature));
    const st = runCli(['mpc', 'status', '--cluster', cluster.path!, '--json'], env());
    assert.equal(st.code, 0, st.stdout + st.stderr);
    const s = JSON.parse(st.stdout);
    assert.deepEqual(
      s.nodes.map((n: { up: boolean }) => n.up),
      [true, true, true],
    );
    assert.equal(s.keys.length, 2);
  });

  test('SIGHUP makes a node process re-read the cluster file; a broken file changes nothing', async () => {
    const np = nodes.get(1)!;
    const reloaded = () => np.out.filter((l) => l.includes('"event":"cluster-reloaded"'));
    np.proc.kill('SIGHUP');
    const end = Date.now() + 5000;
    while (reloaded().length === 0) {
      if (Date.now() > end) assert.fail(`no reload: ${np.out.join('\n')}`);
      await sleep(25);
    }
    assert.deepEqual(
      { ...JSON.parse(reloaded()[0]!), node: undefined },
      {
        event: 'cluster-reloaded',
        node: undefined,
        added: [],
        removed: [],
        rekeyed: [],
        controlPlane: false,
      },
    );
    // A file that no longer parses: logged, not applied, the node keeps running and signing.
    const text = readFileSync(cluster.path!, 'utf8');
    writeFileSync(cluster.path!, '{ not json');
    try {
      np.proc.kill('SIGHUP');
      const end2 = Date.now() + 5000;
      while (!np.out.some((l) => l.includes('cluster file not reloaded'))) {
        if (Date.now() > end2) assert.fail(`no error logged: ${np.out.join('\n')}`);
        await sleep(25);
      }
    } finally {
      writeFileSync(cluster.path!, text);
    }
    assert.equal(np.proc.exitCode, null);
    const msg = randomBytes(40);
    const b = await coord.sign(edKey, msg, { signers: [1, 2] });
    assert.ok(verifyOpenSsl('eddsa-ed25519', b.signingPublicKey, msg, b.signature));
  });

  test('a cheating node process (corrupts its DKLs23 presign messages): abort naming it, key locked, no retry', async () => {
    await kill(2, 'SIGTERM');
    await startNode(2, { CUSTOS_TEST_MPC_CORRUPT: 'dkls23/presign' });
    await sleep(1500);
    const key = await coord.createKey('ecdsa-secp256k1', 2, 3, { allowRawSigning: true });
    const signRequests = new Set<string>();
    const subs = await Promise.all(
      [1, 2, 3].map((id) =>
        bus.subscribe(requestSubject(id, cluster.namespace), (m) => {
          const body = JSON.parse(JSON.parse(new TextDecoder().decode(m.data)).body);
          if (body.type === 'sign' && body.keyId === key.keyId) signRequests.add(body.requestId);
        }),
      ),
    );
    await assert.rejects(coord.sign(key.keyId, randomBytes(32), { signers: [1, 2] }), (e: unknown) => {
      assert.ok(e instanceof MpcError, String(e));
      assert.ok(['CUSTOS_MPC_ABORT', 'CUSTOS_MPC_KEY_LOCKED'].includes(e.code), e.code);
      assert.equal(e.details?.['culprit'], 2, JSON.stringify(e.details));
      return true;
    });
    for (const s of subs) await s.unsubscribe();
    assert.equal(signRequests.size, 1, 'no retry');
    const rec = coord.getKey(key.keyId);
    assert.equal(rec.locked?.culprit, 2);
    await assert.rejects(
      coord.sign(key.keyId, randomBytes(32)),
      (e: unknown) => e instanceof MpcError && e.code === 'CUSTOS_MPC_KEY_LOCKED',
    );
  });
});
