// The identity commands as a newcomer runs them: `custos admin bootstrap` prints one-time
// credentials once; `custos dev` creates the demo organisation and a sandbox API key on first run
// and writes them to <data-dir>/secrets/demo-credentials.json (0600) — usable at once;
// `custos auth rotate-keys`; `custos keys approver-init` writes a 0600 key file and a valid proof.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { approverKeyProofMessage, verifyApproverSignature } from '../src/identity/approver-keys.ts';
import { totp } from '../src/identity/totp.ts';
import { runCli, spawnCli, waitExit } from './helpers/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'custos-identity-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('identity commands', () => {
  test('admin bootstrap prints one-time credentials once; the same organisation again is refused', () => {
    const d = join(dir, 'boot');
    const r = runCli([
      'admin',
      'bootstrap',
      '--org',
      'Acme',
      '--email',
      'Founder@Acme.test',
      '--data-dir',
      d,
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.org.name, 'Acme');
    assert.equal(out.owner.email, 'founder@acme.test');
    assert.ok(out.owner.password.length >= 20);
    assert.match(out.owner.totpUri, /^otpauth:\/\/totp\/Custos:founder%40acme\.test\?secret=/);
    assert.equal(out.owner.recoveryCodes.length, 10);
    for (const f of ['identity-key', 'audit-hmac-key', 'audit-checkpoint-key']) {
      assert.equal(statSync(join(d, 'secrets', f)).mode & 0o777, 0o600, f);
    }
    const again = runCli([
      'admin',
      'bootstrap',
      '--org',
      'Acme',
      '--email',
      'other@acme.test',
      '--data-dir',
      d,
    ]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /CUSTOS_CONFLICT/);
    assert.ok(!again.stdout.includes(out.owner.password));

    const rot = runCli(['auth', 'rotate-keys', '--data-dir', d, '--json']);
    assert.equal(rot.code, 0, rot.stderr);
    assert.match(JSON.parse(rot.stdout).kid, /^[0-9a-f]{32}$/);
    const verify = runCli(['audit', 'verify', '--data-dir', d, '--json']);
    assert.equal(verify.code, 0, verify.stdout);
    assert.equal(JSON.parse(verify.stdout).checked, 2); // bootstrap + key rotation
  });

  test('keys approver-init writes a 0600 key file and a registration proof', () => {
    const f = join(dir, 'approver.json');
    const r = runCli(['keys', 'approver-init', '--out', f, '--org', 'org-1', '--user', 'user-1', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(statSync(f).mode & 0o777, 0o600);
    assert.ok(!r.stdout.includes(JSON.parse(readFileSync(f, 'utf8')).privateKey), 'private key not printed');
    assert.ok(
      verifyApproverSignature(
        out.publicKey,
        approverKeyProofMessage('org-1', 'user-1', out.publicKey),
        out.proof,
      ),
    );
    assert.equal(runCli(['keys', 'approver-init', '--out', f]).code, 1, 'no overwrite');
  });

  test('custos dev: demo organisation, owner and sandbox API key on first run, usable at once', async () => {
    const d = join(dir, 'dev');
    const p = spawnCli(['dev', '--port', '0', '--data-dir', d]);
    let stdout = '';
    p.stdout!.on('data', (x) => {
      stdout += x;
    });
    try {
      // Generous: on a loaded 2-core machine a cold start (tsx, PGlite, migrations, MPC nodes) is slow.
      const deadline = Date.now() + 90_000;
      while (!existsSync(join(d, 'dev.json')) && Date.now() < deadline) await sleep(100);
      assert.ok(existsSync(join(d, 'dev.json')), `custos dev did not start: ${stdout}`);
      const info = JSON.parse(readFileSync(join(d, 'dev.json'), 'utf8')) as { api: string };
      const credsPath = join(d, 'secrets', 'demo-credentials.json');
      assert.equal(statSync(credsPath).mode & 0o777, 0o600);
      const creds = JSON.parse(readFileSync(credsPath, 'utf8'));
      assert.match(creds.apiKey.key, /^ck_test_/);
      const orgs = await fetch(`${info.api}/v1/orgs`, {
        headers: { authorization: `Bearer ${creds.apiKey.key}` },
      });
      assert.equal(orgs.status, 200);
      assert.equal(((await orgs.json()) as { orgs: { name: string }[] }).orgs[0]!.name, 'demo');
      const login = await fetch(`${info.api}/v1/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          email: creds.owner.email,
          password: creds.owner.password,
          totp: totp(creds.owner.totpSecret),
        }),
      });
      assert.equal(login.status, 200);
      const jwks = await fetch(`${info.api}/.well-known/jwks.json`);
      assert.equal(((await jwks.json()) as { keys: unknown[] }).keys.length, 1);
      await sleep(200);
      assert.match(stdout, /Demo:\s+\S+demo-credentials\.json/);
      assert.ok(!stdout.includes(creds.owner.password), 'the password is in the file, not on the terminal');
    } finally {
      p.kill('SIGINT');
      assert.equal((await waitExit(p)).code, 0);
    }
  });
});
