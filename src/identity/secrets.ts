// The three generated secrets of identity and audit, never defaulted:
// - identity key: AES-256-GCM key-encryption key for TOTP secrets and private JWT signing keys;
// - audit HMAC key: HMAC-SHA256 of sensitive audit detail values;
// - audit checkpoint key: Ed25519 seed that signs audit checkpoints.
// Production reads them from the files named in the configuration (and refuses to start without);
// development and tests generate them on first use under <dataDir>/secrets/ (mode 0600).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Config, ENV_VARS } from '../config.ts';
import { ConfigError } from '../errors.ts';
import { ensureDataDir, ensureSecret, secretsDir } from '../roles/data-dir.ts';

export interface SecurityKeys {
  identityKek: Uint8Array;
  auditHmacKey: Uint8Array;
  auditCheckpointKey: Uint8Array;
  /** Secret files generated just now (so the caller can say where they are). */
  generated: string[];
}

const SPECS = [
  { field: 'identityKek', configKey: 'identityKeyFile', name: 'identity-key' },
  { field: 'auditHmacKey', configKey: 'auditHmacKeyFile', name: 'audit-hmac-key' },
  { field: 'auditCheckpointKey', configKey: 'auditCheckpointKeyFile', name: 'audit-checkpoint-key' },
] as const;

export function loadSecurityKeys(config: Config, opts: { generate?: boolean } = {}): SecurityKeys {
  const out: Partial<Record<(typeof SPECS)[number]['field'], Uint8Array>> = {};
  const generated: string[] = [];
  for (const s of SPECS) {
    const file = config[s.configKey];
    if (file) {
      out[s.field] = readKeyFile(file, ENV_VARS[s.configKey]);
    } else if (
      existsSync(join(secretsDir(config.dataDir), s.name)) ||
      (config.env !== 'production' && opts.generate !== false)
    ) {
      ensureDataDir(config.dataDir);
      const r = ensureSecret(config.dataDir, s.name, 32);
      if (r.created) generated.push(r.path);
      out[s.field] = fromHex(r.value, r.path);
    } else {
      throw new ConfigError(
        'CUSTOS_CONFIG_INVALID',
        config.env === 'production'
          ? `${ENV_VARS[s.configKey]}: required in production (a file with 64 hex characters)`
          : `${ENV_VARS[s.configKey]}: not set and ${secretsDir(config.dataDir)}/${s.name} does not exist`,
        { details: { variable: ENV_VARS[s.configKey] } },
      );
    }
  }
  return {
    identityKek: out.identityKek!,
    auditHmacKey: out.auditHmacKey!,
    auditCheckpointKey: out.auditCheckpointKey!,
    generated,
  };
}

function readKeyFile(path: string, variable: string): Uint8Array {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new ConfigError('CUSTOS_CONFIG_INVALID', `${variable}: cannot read ${path}`, {
      details: { variable },
    });
  }
  return fromHex(text.trim(), variable);
}

function fromHex(hex: string, where: string): Uint8Array {
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) {
    throw new ConfigError(
      'CUSTOS_CONFIG_INVALID',
      `${where}: must hold exactly 64 hex characters (32 bytes)`,
    );
  }
  return Uint8Array.from(Buffer.from(hex, 'hex'));
}
