// Wires identity and audit for a role: loads the generated secrets, builds the audit log, the
// token service (JWT keys), security events and the identity service. `custos api`/`dev` and the
// identity/audit CLI commands all start from here.
import type { Kysely } from 'kysely';
import { AuditLog } from '../audit/log.ts';
import type { Config } from '../config.ts';
import type { Logger } from '../log/logger.ts';
import type { Database } from '../store/schema.ts';
import { loadSecurityKeys, type SecurityKeys } from './secrets.ts';
import { SecurityEvents } from './security-events.ts';
import { IdentityService } from './service.ts';
import { TokenService } from './tokens.ts';

export interface SecurityServices {
  audit: AuditLog;
  tokens: TokenService;
  events: SecurityEvents;
  identity: IdentityService;
  keys: SecurityKeys;
  /** Stops timers (key reloads, checkpoints). */
  stop(): void;
}

export async function createSecurityServices(
  config: Config,
  db: Kysely<Database>,
  logger: Logger,
  opts: { keys?: SecurityKeys; startTimers?: boolean; loadTokens?: boolean } = {},
): Promise<SecurityServices> {
  const keys = opts.keys ?? loadSecurityKeys(config);
  for (const path of keys.generated) logger.info({ path }, 'generated a secret (mode 0600)');
  const audit = new AuditLog({
    hmacKey: keys.auditHmacKey,
    checkpointKey: keys.auditCheckpointKey,
    checkpointEvery: config.auditCheckpointEvery,
    logger: logger.child({ component: 'audit' }),
  });
  const tokens = new TokenService(
    db,
    keys.identityKek,
    {
      issuer: config.authIssuer,
      audience: config.authAudience,
      accessTtlSeconds: config.accessTokenTtlSeconds,
      overlapSeconds: config.jwtKeyOverlapSeconds,
    },
    logger.child({ component: 'tokens' }),
  );
  const events = new SecurityEvents(db, logger.child({ component: 'security' }));
  const identity = new IdentityService({
    db,
    audit,
    tokens,
    events,
    kek: keys.identityKek,
    settings: {
      argon2: { memoryKib: config.argon2MemoryKib, timeCost: config.argon2TimeCost },
      lockoutThreshold: config.lockoutThreshold,
      lockoutMinutes: config.lockoutMinutes,
      refreshTtlSeconds: config.refreshTokenTtlSeconds,
    },
    logger,
  });
  if (opts.loadTokens !== false) await tokens.start();
  const stopCheckpoints = opts.startTimers
    ? audit.startCheckpointTimer(db, config.auditCheckpointSeconds)
    : () => {};
  return {
    audit,
    tokens,
    events,
    identity,
    keys,
    stop() {
      stopCheckpoints();
      tokens.stop();
    },
  };
}
