// `custos approve`: signs locally with an approver key file and submits only the signature.
//   custos approve <txId> --key FILE [--reject]        approve (or reject) a withdrawal's intentHash
//   custos approve --vault-policy <vaultId> --key FILE  owner: sign a vault's policy statement
//   custos approve --endorse <approverKeyId> --key FILE owner: endorse an approver key
//   custos approve --asset <assetId> --key FILE        owner: endorse a registered token's definition
//   custos approve --trust-owner --org ORG --public-key HEX [--trust-file FILE]
//                                                       node operator: make the MPC nodes (dev's, or
//                                                       the node whose file this is) trust this owner
//                                                       public key for ORG (--key FILE also works)
//   custos approve --revoke-approver --org ORG --public-key HEX [--trust-file FILE]
//                                                       node operator: those nodes never again count
//                                                       an approval by this approver key
// The API is --api URL (default: the running `custos dev`), the credential --token.
// The private key never leaves this machine.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { ConfigError } from '../errors.ts';
import {
  parseApproverKeyFile,
  parseApproverPublicKey,
  signWithApproverKey,
} from '../identity/approver-keys.ts';
import { readTrustFile } from '../mpc/authorizers/custody-approvals.ts';
import { approvalMessage, statementMessage } from '../mpc/authorizers/custody-evidence.ts';
import { writeAtomic } from '../roles/data-dir.ts';
import { apiClient } from './api-client.ts';
import { printFields } from './output.ts';

interface ApproveOptions {
  key?: string;
  publicKey?: string;
  reject?: boolean;
  vaultPolicy?: string;
  endorse?: string;
  asset?: string;
  trustOwner?: boolean;
  revokeApprover?: boolean;
  trustFile?: string;
  org?: string;
  api?: string;
  token?: string;
  dataDir: string;
  json?: boolean;
}

export function registerApproveCommands(program: Command): void {
  program
    .command('approve [txId]')
    .description('sign a withdrawal approval (or a governance statement) locally and submit it')
    .option(
      '--key <file>',
      'approver key file (custos keys approver-init); required except with --trust-owner --public-key',
    )
    .option(
      '--public-key <hex>',
      "with --trust-owner: the owner's Ed25519 public key (the private key never goes to a node)",
    )
    .option('--reject', 'reject instead of approve')
    .option('--vault-policy <vaultId>', 'owner: sign this vault’s policy')
    .option('--endorse <approverKeyId>', 'owner: endorse this approver key')
    .option('--asset <assetId>', 'owner: endorse this registered token (network:SYMBOL) for signing')
    .option('--trust-owner', 'dev node operator: trust this key as an owner key of --org on the local nodes')
    .option(
      '--revoke-approver',
      'node operator: the MPC nodes (dev’s, or the node whose --trust-file this is) never count this approver key of --org again',
    )
    .option('--org <orgId>', 'organisation (with --trust-owner or --revoke-approver)')
    .option(
      '--trust-file <file>',
      "with --trust-owner / --revoke-approver: a node's trusted-owners file (custos mpc-node start --trusted-owners; default: the dev nodes' DATA_DIR/mpc/trusted-owners.json)",
    )
    .option('--api <url>', 'API base URL (default: the running custos dev)')
    .option('--token <token>', 'access token or API key')
    .option('--data-dir <dir>', 'data directory of custos dev', './.custos')
    .option('--json', 'machine-readable output')
    .action(async (txId: string | undefined, o: ApproveOptions) => {
      if (o.trustOwner || o.revokeApprover) {
        const flag = o.trustOwner ? '--trust-owner' : '--revoke-approver';
        if (o.trustOwner && o.revokeApprover)
          throw new ConfigError('CUSTOS_VALIDATION', 'give --trust-owner or --revoke-approver, not both');
        if (!o.org) throw new ConfigError('CUSTOS_VALIDATION', `${flag} needs --org`);
        if (!o.publicKey && !o.key)
          throw new ConfigError('CUSTOS_VALIDATION', `${flag} needs --public-key HEX (or --key FILE)`);
        const publicKey = o.publicKey
          ? parseApproverPublicKey(o.publicKey)
          : parseApproverKeyFile(readFileSync(resolve(o.key!), 'utf8')).publicKey;
        const file = o.trustFile
          ? resolve(o.trustFile)
          : join(resolve(o.dataDir), 'mpc', 'trusted-owners.json');
        const j = readTrustFile(file);
        const lists = o.trustOwner ? j.orgs : j.revokedApprovers;
        lists[o.org] = [...new Set([...(lists[o.org] ?? []), publicKey])];
        writeAtomic(file, `${JSON.stringify(j, null, 2)}\n`, 0o644);
        return out(
          o,
          o.trustOwner ? { trusted: publicKey, org: o.org, file } : { revoked: publicKey, org: o.org, file },
        );
      }
      if (!o.key) throw new ConfigError('CUSTOS_VALIDATION', 'give --key FILE (your approver key file)');
      const key = parseApproverKeyFile(readFileSync(resolve(o.key), 'utf8'));
      const call = apiClient(o);
      if (o.vaultPolicy) {
        const v = await call('GET', `/v1/vaults/${encodeURIComponent(o.vaultPolicy)}`);
        const signature = signWithApproverKey(key, statementMessage(v['policy'] as never));
        const r = await call('POST', `/v1/vaults/${encodeURIComponent(o.vaultPolicy)}/policy-signature`, {
          publicKey: key.publicKey,
          signature,
        });
        return out(o, { vaultId: r['id'], policySigned: r['policySigned'] });
      }
      if (o.endorse) {
        const path = `/v1/approver-keys/${encodeURIComponent(o.endorse)}`;
        const statement = await call('GET', `${path}/endorsement-statement`);
        const signature = signWithApproverKey(key, statementMessage(statement as never));
        const r = await call('POST', `${path}/endorsement`, { publicKey: key.publicKey, signature });
        return out(o, { approverKeyId: r['approverKeyId'], endorsed: true });
      }
      if (o.asset) {
        const path = `/v1/assets/${encodeURIComponent(o.asset)}`;
        const statement = await call('GET', `${path}/endorsement-statement`);
        const signature = signWithApproverKey(key, statementMessage(statement as never));
        const r = await call('POST', `${path}/endorsement`, { publicKey: key.publicKey, signature });
        // What was signed, so the owner sees the contract it vouched for.
        return out(o, {
          assetId: r['id'],
          endorsed: r['endorsed'],
          network: statement['network'],
          symbol: statement['symbol'],
          decimals: statement['decimals'],
          contract: statement['contract'],
        });
      }
      if (!txId)
        throw new ConfigError(
          'CUSTOS_VALIDATION',
          'give a transaction id (or --vault-policy / --endorse / --asset)',
        );
      const tx = await call('GET', `/v1/transactions/${encodeURIComponent(txId)}`);
      const hash = String(tx['intentHash']);
      const decision = o.reject ? 'reject' : 'approve';
      const signature = signWithApproverKey(key, approvalMessage(decision, hash));
      const r = await call(
        'POST',
        `/v1/transactions/${encodeURIComponent(txId)}/${o.reject ? 'rejections' : 'approvals'}`,
        {
          intentHash: hash,
          publicKey: key.publicKey,
          signature,
        },
      );
      return out(o, {
        transactionId: txId,
        decision,
        intentHash: hash,
        state: r['state'],
        destination: tx['destination'],
        amount: tx['amount'],
        asset: tx['asset'],
      });
    });
}

function out(o: ApproveOptions, value: Record<string, unknown>): void {
  printFields(o.json, value);
}
