// NATS over mutual TLS with a real `nats-server --tlsverify` and certificates made by the openssl
// CLI: the bus connects with CUSTOS_NATS_TLS_* (config → createBus), MPC nodes and the coordinator
// sign over it, the `custos mpc sign` CLI reads the same variables; a client without a certificate,
// with a certificate from another CA, without the CA bundle, or with TLS against a plaintext server
// is refused; bad TLS files are a clear ConfigError before any connection is attempted.
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash, createPublicKey, verify as osslVerify } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createBus, natsOptionsOf, plaintextNatsWarning } from '../src/bus/index.ts';
import { loadConfig } from '../src/config.ts';
import { CustosError } from '../src/errors.ts';
import { type InProcessCluster, startInProcessCluster } from '../src/mpc/local.ts';
import { runCliAsync, waitExit } from './helpers/cli.ts';

const NATS_SERVER = ['/usr/sbin/nats-server', '/usr/bin/nats-server', '/usr/local/bin/nats-server'].find(
  (p) => existsSync(p),
);
const PLAIN_NATS = process.env['CUSTOS_TEST_NATS_URL'];
// CI (CUSTOS_TEST_NATS_URL set) must have the server binary: there the test fails instead of skipping.
const skip = NATS_SERVER || PLAIN_NATS ? false : 'nats-server is not installed';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A CA and a leaf it signs: `name.pem` / `name.key` in dir. */
function makeCa(dir: string, name: string): void {
  openssl(
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'].concat([
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.pem`,
      '-days',
      '2',
      '-subj',
      `/CN=${name}`,
    ]),
    dir,
  );
}
function makeLeaf(dir: string, ca: string, name: string, ext: string): void {
  writeFileSync(join(dir, `${name}.ext`), ext);
  openssl(
    ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'].concat([
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
      '-subj',
      `/CN=${name}`,
    ]),
    dir,
  );
  openssl(
    [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      `${ca}.pem`,
      '-CAkey',
      `${ca}.key`,
      '-CAcreateserial',
    ].concat(['-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`]),
    dir,
  );
}

const sha256 = (b: Uint8Array) => new Uint8Array(createHash('sha256').update(b).digest());

describe('NATS with mutual TLS', { skip }, () => {
  let dir: string;
  let certs: string;
  let server: ChildProcess;
  let url: string;
  const f = (name: string) => join(certs, name);
  const tlsEnv = () => ({
    CUSTOS_NATS_URL: url,
    CUSTOS_NATS_TLS_CA_FILE: f('ca.pem'),
    CUSTOS_NATS_TLS_CERT_FILE: f('client.pem'),
    CUSTOS_NATS_TLS_KEY_FILE: f('client.key'),
  });
  const busFromEnv = (env: Record<string, string>) =>
    createBus({ ...natsOptionsOf(loadConfig({ env })), name: 'custos-tls-test', connectTimeoutMs: 2000 });

  before(async () => {
    assert.ok(NATS_SERVER, 'nats-server must be installed where CUSTOS_TEST_NATS_URL is set');
    dir = mkdtempSync(join(tmpdir(), 'custos-nats-tls-'));
    certs = join(dir, 'certs');
    mkdirSync(certs);
    makeCa(certs, 'ca');
    makeLeaf(
      certs,
      'ca',
      'server',
      'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n',
    );
    makeLeaf(certs, 'ca', 'client', 'extendedKeyUsage=clientAuth\n');
    makeCa(certs, 'rogue-ca');
    makeLeaf(certs, 'rogue-ca', 'rogue', 'extendedKeyUsage=clientAuth\n');
    const port = await freePort();
    url = `nats://127.0.0.1:${port}`;
    server = spawn(
      NATS_SERVER,
      ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', join(dir, 'js')].concat([
        '--tls',
        '--tlscert',
        f('server.pem'),
        '--tlskey',
        f('server.key'),
        '--tlscacert',
        f('ca.pem'),
        '--tlsverify',
      ]),
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let log = '';
    server.stderr!.on('data', (d) => {
      log += String(d);
    });
    for (let i = 0; i < 100 && !log.includes('Server is ready'); i++) await sleep(50);
    assert.match(log, /Server is ready/, log);
  });

  after(async () => {
    if (server && server.exitCode === null) {
      server.kill('SIGTERM');
      await waitExit(server, 10_000).catch(() => {});
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('a bus configured with CUSTOS_NATS_TLS_* connects, publishes and runs JetStream', async () => {
    const bus = await busFromEnv(tlsEnv());
    try {
      assert.equal(bus.kind, 'nats');
      await bus.ping();
      const sub = await bus.subscribe('custos.tls.echo', (m) => {
        m.respond(m.data);
      });
      const reply = await bus.request('custos.tls.echo', new TextEncoder().encode('over tls'), {
        timeoutMs: 2000,
      });
      assert.equal(new TextDecoder().decode(reply.data), 'over tls');
      await sub.unsubscribe();
    } finally {
      await bus.close();
    }
  });

  test('MPC nodes and the coordinator sign over mutual TLS; the CLI reads the same variables', async () => {
    const clusterDir = join(dir, 'cluster');
    let c: InProcessCluster | undefined;
    try {
      c = await startInProcessCluster({
        dir: clusterDir,
        kdf: { memoryCost: 1024, timeCost: 1 },
        poolSize: 0,
        natsUrl: url,
        natsTls: { caFile: f('ca.pem'), certFile: f('client.pem'), keyFile: f('client.key') },
        namespace: `tls${process.pid}`,
      });
      const key = await c.coordinator.createKey('eddsa-ed25519', 2, 3, { allowRawSigning: true });
      const msg = new TextEncoder().encode('signed over tls');
      const s = await c.coordinator.sign(key.keyId, msg);
      const pub = createPublicKey({
        key: Buffer.concat([
          Buffer.from('302a300506032b6570032100', 'hex'),
          Buffer.from(key.publicKey, 'hex'),
        ]),
        format: 'der',
        type: 'spki',
      });
      assert.ok(osslVerify(null, msg, pub, Buffer.from(s.signature, 'hex')));

      const clusterFile = join(clusterDir, 'cluster.json');
      const args = [
        'mpc',
        'sign',
        '--cluster',
        clusterFile,
        '--key',
        key.keyId,
        '--message',
        '6869',
        '--json',
      ];
      const ok = await runCliAsync(args, tlsEnv());
      assert.equal(ok.code, 0, ok.stdout + ok.stderr);
      const j = JSON.parse(ok.stdout);
      assert.ok(osslVerify(null, Buffer.from('hi'), pub, Buffer.from(j.signature, 'hex')));

      // The same CLI without its client certificate is refused by the server: no signature.
      const { CUSTOS_NATS_TLS_CERT_FILE: _c, CUSTOS_NATS_TLS_KEY_FILE: _k, ...noCert } = tlsEnv();
      const bad = await runCliAsync(args, noCert);
      assert.notEqual(bad.code, 0);
      assert.equal(JSON.parse(bad.stdout).error.code, 'CUSTOS_BUS_UNAVAILABLE', bad.stdout);
      assert.ok(!('signature' in JSON.parse(bad.stdout)));
    } finally {
      await c?.stop();
    }
  });

  async function refused(env: Record<string, string>): Promise<CustosError> {
    try {
      const bus = await busFromEnv(env);
      await bus.close();
    } catch (e) {
      assert.ok(e instanceof CustosError, String(e));
      return e;
    }
    assert.fail('the connection was accepted');
  }

  test('no client certificate, a certificate from another CA, or no CA bundle: refused', async () => {
    const { CUSTOS_NATS_TLS_CERT_FILE: _c, CUSTOS_NATS_TLS_KEY_FILE: _k, ...noCert } = tlsEnv();
    assert.equal((await refused(noCert)).code, 'CUSTOS_BUS_UNAVAILABLE');
    const rogue = {
      ...tlsEnv(),
      CUSTOS_NATS_TLS_CERT_FILE: f('rogue.pem'),
      CUSTOS_NATS_TLS_KEY_FILE: f('rogue.key'),
    };
    assert.equal((await refused(rogue)).code, 'CUSTOS_BUS_UNAVAILABLE');
    // Without our CA the server's certificate does not verify against the system store.
    const { CUSTOS_NATS_TLS_CA_FILE: _a, ...noCa } = tlsEnv();
    assert.equal((await refused(noCa)).code, 'CUSTOS_BUS_UNAVAILABLE');
    // And plaintext to a TLS-only server.
    assert.equal((await refused({ CUSTOS_NATS_URL: url })).code, 'CUSTOS_BUS_UNAVAILABLE');
  });

  test('TLS configured but the server offers none: refused (no silent downgrade)', {
    skip: !PLAIN_NATS,
  }, async () => {
    const e = await refused({ ...tlsEnv(), CUSTOS_NATS_URL: PLAIN_NATS! });
    assert.equal(e.code, 'CUSTOS_BUS_UNAVAILABLE');
  });

  test('bad TLS files are a ConfigError naming the file, before connecting', async () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ CUSTOS_NATS_TLS_CA_FILE: join(dir, 'missing.pem') }, /missing\.pem: cannot read \(ENOENT\)/],
      [{ CUSTOS_NATS_TLS_CA_FILE: f('server.ext') }, /server\.ext: not a PEM file/],
      [{ CUSTOS_NATS_TLS_CA_FILE: f('client.key') }, /client\.key: not an X\.509 certificate/],
      [{ CUSTOS_NATS_TLS_KEY_FILE: f('client.pem') }, /not an unencrypted PEM private key/],
      [{ CUSTOS_NATS_TLS_KEY_FILE: f('rogue.key') }, /rogue\.key does not belong to the certificate/],
    ];
    for (const [patch, re] of cases) {
      const e = await refused({ ...tlsEnv(), ...patch });
      assert.equal(e.code, 'CUSTOS_CONFIG_INVALID', e.message);
      assert.match(e.message, re);
      assert.doesNotMatch(e.message, /BEGIN|PRIVATE/);
    }
    // Certificate without key (and the reverse) is refused by the configuration itself.
    assert.throws(
      () => loadConfig({ env: { CUSTOS_NATS_URL: url, CUSTOS_NATS_TLS_CERT_FILE: f('client.pem') } }),
      (e: CustosError) => e.code === 'CUSTOS_CONFIG_INVALID' && /CUSTOS_NATS_TLS_KEY_FILE/.test(e.message),
    );
    assert.throws(
      () => loadConfig({ env: { CUSTOS_NATS_URL: url, CUSTOS_NATS_TLS_KEY_FILE: f('client.key') } }),
      (e: CustosError) => e.code === 'CUSTOS_CONFIG_INVALID' && /CUSTOS_NATS_TLS_CERT_FILE/.test(e.message),
    );
    const creds = await refused({ CUSTOS_NATS_URL: url, CUSTOS_NATS_CREDS_FILE: f('client.pem') });
    assert.match(creds.message, /not a NATS \.creds file/);
  });

  test('2-of-3 ECDSA (DKG with its OT traffic, presign, sign) over mutual TLS verifies with OpenSSL', async () => {
    // Guard against a TLS path that only works for one scheme: the ECDSA path carries OT traffic.
    const c = await startInProcessCluster({
      dir: join(dir, 'cluster-ecdsa'),
      kdf: { memoryCost: 1024, timeCost: 1 },
      poolSize: 0,
      natsUrl: url,
      natsTls: { caFile: f('ca.pem'), certFile: f('client.pem'), keyFile: f('client.key') },
      namespace: `tlse${process.pid}`,
    });
    try {
      const key = await c.coordinator.createKey('ecdsa-secp256k1', 2, 3, { allowRawSigning: true });
      const preimage = new TextEncoder().encode('ecdsa over tls');
      const s = await c.coordinator.sign(key.keyId, sha256(preimage));
      const spki = Buffer.concat([
        Buffer.from('3036301006072a8648ce3d020106052b8104000a032200', 'hex'),
        Buffer.from(key.publicKey, 'hex'),
      ]);
      const pub = createPublicKey({ key: spki, format: 'der', type: 'spki' });
      // OpenSSL hashes the preimage itself.
      assert.ok(
        osslVerify(
          'sha256',
          preimage,
          { key: pub, dsaEncoding: 'ieee-p1363' },
          Buffer.from(s.signature, 'hex'),
        ),
      );
    } finally {
      await c.stop();
    }
  });
});

test('production warns about plaintext NATS; TLS files or tls:// URLs silence it', () => {
  const base = { env: 'production' as const, natsUrl: 'nats://10.0.0.5:4222' };
  assert.match(plaintextNatsWarning(base) ?? '', /without TLS in production/);
  assert.equal(plaintextNatsWarning({ ...base, natsTlsCaFile: '/etc/custos/nats-ca.pem' }), undefined);
  assert.equal(plaintextNatsWarning({ ...base, natsUrl: 'tls://a:4222,tls://b:4222' }), undefined);
  assert.match(plaintextNatsWarning({ ...base, natsUrl: 'tls://a:4222,nats://b:4222' }) ?? '', /without TLS/);
  assert.equal(plaintextNatsWarning({ ...base, env: 'development' }), undefined);
  assert.equal(plaintextNatsWarning({ env: 'production', natsUrl: undefined }), undefined);
});
