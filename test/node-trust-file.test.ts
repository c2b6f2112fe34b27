// A node's trust file (`trusted-owners.json`): the owner keys its operator trusts and the approver
// keys its operator revoked, written with `custos approve --trust-owner / --revoke-approver` and read
// by FileOwnerTrust. A malformed file makes the node sign nothing (it throws), never "trust nobody
// revoked".
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { generateApproverKey } from '../src/identity/approver-keys.ts';
import { FileOwnerTrust, readTrustFile } from '../src/mpc/authorizers/custody-approvals.ts';
import { runCli } from './helpers/cli.ts';

describe('node trust file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'custos-trust-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const owner = generateApproverKey().publicKey;
  const approver = generateApproverKey().publicKey;

  test('custos approve --trust-owner and --revoke-approver write the file FileOwnerTrust reads', () => {
    const file = join(dir, 'trusted-owners.json');
    const trust = new FileOwnerTrust(file);
    assert.deepEqual(trust.ownerKeys('org_a'), []);
    assert.deepEqual(trust.revokedApproverKeys('org_a'), []);

    const t = runCli([
      'approve',
      '--trust-owner',
      '--org',
      'org_a',
      '--public-key',
      owner,
      '--trust-file',
      file,
      '--json',
    ]);
    assert.equal(t.code, 0, t.stderr);
    const r = runCli([
      'approve',
      '--revoke-approver',
      '--org',
      'org_a',
      '--public-key',
      approver,
      '--trust-file',
      file,
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).revoked, approver);
    // Twice is once.
    assert.equal(
      runCli([
        'approve',
        '--revoke-approver',
        '--org',
        'org_a',
        '--public-key',
        approver,
        '--trust-file',
        file,
      ]).code,
      0,
    );

    assert.deepEqual(readTrustFile(file), {
      orgs: { org_a: [owner] },
      revokedApprovers: { org_a: [approver] },
    });
    assert.deepEqual(trust.ownerKeys('org_a'), [owner]);
    assert.deepEqual(trust.revokedApproverKeys('org_a'), [approver]);
    assert.deepEqual(trust.revokedApproverKeys('org_b'), [], 'per organisation');

    const both = runCli([
      'approve',
      '--trust-owner',
      '--revoke-approver',
      '--org',
      'org_a',
      '--public-key',
      approver,
      '--trust-file',
      file,
    ]);
    assert.notEqual(both.code, 0);
    assert.match(both.stderr, /not both/);
    const noOrg = runCli(['approve', '--revoke-approver', '--public-key', approver, '--trust-file', file]);
    assert.notEqual(noOrg.code, 0);
    assert.match(noOrg.stderr, /--revoke-approver needs --org/);
    const badKey = runCli([
      'approve',
      '--revoke-approver',
      '--org',
      'org_a',
      '--public-key',
      'zz',
      '--trust-file',
      file,
    ]);
    assert.notEqual(badKey.code, 0);
    assert.deepEqual(
      readTrustFile(file).revokedApprovers,
      { org_a: [approver] },
      'refused input changes nothing',
    );
  });

  test('a malformed trust file throws with a stable code (the node then signs nothing)', () => {
    const cases: [string, RegExp][] = [
      ['{not json', /not JSON/],
      ['{"orgs": {"org_a": ["abc"]}}', /orgs\.org_a\.0/],
      ['{"orgs": {}, "revokedApprovers": {"org_a": "x"}}', /revokedApprovers\.org_a/],
      ['{"orgs": {}, "revoked": {}}', /Unrecognized key/],
    ];
    for (const [i, [text, reason]] of cases.entries()) {
      const file = join(dir, `bad-${i}.json`);
      writeFileSync(file, text);
      assert.throws(
        () => new FileOwnerTrust(file).revokedApproverKeys('org_a'),
        (e: Error & { code?: string }) => e.code === 'CUSTOS_CONFIG_INVALID' && reason.test(e.message),
        text,
      );
    }
    // A file written before revocations existed (owner keys only) still reads.
    const old = join(dir, 'old.json');
    writeFileSync(old, JSON.stringify({ orgs: { org_a: [owner.toUpperCase()] } }));
    assert.deepEqual(new FileOwnerTrust(old).ownerKeys('org_a'), [owner]);
    assert.equal(readFileSync(old, 'utf8').includes('revokedApprovers'), false);
  });
});
