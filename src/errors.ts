// The one error type of Custos. Every error that reaches an API response, a CLI exit or a log has a
// stable `code` (documented in docs/errors.md with its HTTP status), a short human message, and
// optional structured details that are safe to show. `cause` keeps the original for logs only.
//
// Rules: never put a secret (share, nonce, password, token, API key) into a message or details;
// strip credentials from URLs with `redactUrl` before they go into either.

export interface CustosErrorOptions {
  details?: Record<string, unknown>;
  cause?: unknown;
}

export class CustosError extends Error {
  override name = 'CustosError';
  readonly code: string;
  readonly shortMessage: string;
  readonly details: Record<string, unknown> | undefined;
  /** HTTP status this error maps to; the registry in ERROR_CODES is the source of truth. */
  get httpStatus(): number {
    return ERROR_CODES[this.code as ErrorCode]?.status ?? 500;
  }
  constructor(code: ErrorCode, shortMessage: string, opts: CustosErrorOptions = {}) {
    super(shortMessage, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.code = code;
    this.shortMessage = shortMessage;
    this.details = opts.details;
  }
}

export class ConfigError extends CustosError {
  override name = 'ConfigError';
}
export class ValidationError extends CustosError {
  override name = 'ValidationError';
}
export class StoreError extends CustosError {
  override name = 'StoreError';
}
export class BusError extends CustosError {
  override name = 'BusError';
}
export class StateError extends CustosError {
  override name = 'StateError';
}
export class AuthError extends CustosError {
  override name = 'AuthError';
}
export class NotFoundError extends CustosError {
  override name = 'NotFoundError';
}
export class MpcError extends CustosError {
  override name = 'MpcError';
}
export class AuditError extends CustosError {
  override name = 'AuditError';
}
/** Chain adapters (src/chains): addresses, transaction building, RPC, broadcast. */
export class ChainError extends CustosError {
  override name = 'ChainError';
}

/** Custody: vaults, wallets, ledger, withdrawals, approvals (src/custody). */
export class CustodyError extends CustosError {
  override name = 'CustodyError';
}

/**
 * Every error code in the code base, its HTTP status and what it means. docs/errors.md is generated
 * from (and tested against) this table, so adding a code here is how a code comes to exist.
 */
export const ERROR_CODES = {
  CUSTOS_INTERNAL: {
    status: 500,
    description: 'Unexpected internal error; details are in the server log only.',
  },
  CUSTOS_CONFIG_INVALID: { status: 500, description: 'A configuration value is missing or invalid.' },
  CUSTOS_VALIDATION: {
    status: 400,
    description: 'The request (body, query, params or headers) failed validation.',
  },
  CUSTOS_BAD_JSON: {
    status: 400,
    description: 'The request body is not valid JSON or contains a forbidden key.',
  },
  CUSTOS_PAYLOAD_TOO_LARGE: { status: 413, description: 'The request body exceeds the configured limit.' },
  CUSTOS_UNSUPPORTED_MEDIA_TYPE: { status: 415, description: 'The request content type is not accepted.' },
  CUSTOS_NOT_FOUND: {
    status: 404,
    description: 'The resource or route does not exist (or is not visible to you).',
  },
  CUSTOS_METHOD_NOT_ALLOWED: { status: 405, description: 'The route exists but not with this method.' },
  CUSTOS_UNAUTHENTICATED: { status: 401, description: 'No valid credentials were presented.' },
  CUSTOS_FORBIDDEN: { status: 403, description: 'The credentials are valid but lack permission.' },
  CUSTOS_RATE_LIMITED: {
    status: 429,
    description: 'Too many requests; retry after the Retry-After seconds.',
  },
  CUSTOS_CONFLICT: {
    status: 409,
    description: 'The request conflicts with the current state of the resource.',
  },
  CUSTOS_IDEMPOTENCY_MISMATCH: {
    status: 409,
    description: 'The Idempotency-Key was already used with a different request body.',
  },
  CUSTOS_NOT_READY: { status: 503, description: 'A dependency (database, bus, Redis) is not available.' },
  CUSTOS_SHUTTING_DOWN: { status: 503, description: 'The server is shutting down and accepts no new work.' },
  CUSTOS_STORE_UNAVAILABLE: { status: 503, description: 'The database cannot be reached.' },
  CUSTOS_STORE_CONSTRAINT: { status: 409, description: 'A uniqueness or integrity constraint was violated.' },
  CUSTOS_MIGRATION_FAILED: { status: 500, description: 'A database migration failed; nothing after it ran.' },
  CUSTOS_BUS_UNAVAILABLE: { status: 503, description: 'The message bus cannot be reached.' },
  CUSTOS_API_UNREACHABLE: {
    status: 503,
    description: 'CLI only: the Custos API given by --api (or the running custos dev) cannot be reached.',
  },
  CUSTOS_BUS_TIMEOUT: { status: 504, description: 'A request over the message bus got no reply in time.' },
  CUSTOS_BUS_NO_RESPONDERS: { status: 503, description: 'Nobody is subscribed to answer a bus request.' },
  CUSTOS_BUS_INVALID_SUBJECT: {
    status: 400,
    description: 'A bus subject or durable consumer name is malformed.',
  },
  CUSTOS_BUS_NOT_FOUND: {
    status: 500,
    description: 'A bus stream or durable consumer does not exist, or no stream captures the subject.',
  },
  CUSTOS_BUS_INVALID_ARGUMENT: {
    status: 500,
    description: 'A bus call got an invalid option (timeout, header, stream or consumer setting).',
  },
  CUSTOS_STATE_UNAVAILABLE: { status: 503, description: 'The shared-state store (Redis) cannot be reached.' },
  CUSTOS_STATE_INVALID_ARGUMENT: {
    status: 500,
    description: 'A shared-state call got an invalid key, TTL or rate-limit parameter.',
  },
  CUSTOS_LOCK_BUSY: {
    status: 409,
    description: 'A lock is held by someone else and did not free up in time.',
  },
  CUSTOS_LOCK_NOT_HELD: {
    status: 409,
    description: 'A lock was released or extended by someone who does not hold it.',
  },
  CUSTOS_MPC_ABORT: {
    status: 502,
    description: 'A threshold protocol session aborted (a culprit may be named).',
  },
  CUSTOS_MPC_TIMEOUT: {
    status: 504,
    description: 'Not enough MPC nodes answered in time; nothing was signed.',
  },
  CUSTOS_MPC_KEY_LOCKED: { status: 423, description: 'The key is locked after a detected cheating attempt.' },
  CUSTOS_MPC_BAD_REQUEST: {
    status: 400,
    description: 'An MPC request (scheme, threshold, digest, path) is invalid.',
  },
  CUSTOS_MPC_UNAUTHORIZED: {
    status: 403,
    description:
      'An MPC node refused the request: bad control-plane signature, or its authorize chain found no valid evidence.',
  },
  CUSTOS_MPC_KEY_NOT_FOUND: { status: 404, description: 'No threshold key with this id is known.' },
  CUSTOS_MPC_SECRET_INVALID: {
    status: 500,
    description:
      'An MPC node file cannot be decrypted: the node secret is missing or wrong, or the file was altered.',
  },
  CUSTOS_MPC_NODE_STATE: {
    status: 500,
    description: 'An MPC node data directory or cluster file is missing, incomplete or inconsistent.',
  },
  // --- identity, access control, rate limits, audit (src/identity, src/api/auth, src/audit) ---
  CUSTOS_INVALID_CREDENTIALS: {
    status: 401,
    description: 'Login failed: unknown email, wrong password or wrong second factor (never says which).',
  },
  CUSTOS_MFA_REQUIRED: {
    status: 401,
    description: 'The password was accepted but a TOTP code (or a recovery code) is required.',
  },
  CUSTOS_MFA_ENROLLMENT_REQUIRED: {
    status: 403,
    description: 'This role needs TOTP: enrol at /v1/auth/totp/enroll before anything else.',
  },
  CUSTOS_ACCOUNT_LOCKED: {
    status: 423,
    description: 'Too many failed logins: the account is locked for a while (details.lockedUntil).',
  },
  CUSTOS_REFRESH_TOKEN_REUSED: {
    status: 401,
    description: 'An already used refresh token was presented: the whole session family is revoked.',
  },
  CUSTOS_RATE_LIMIT_BLOCKED: {
    status: 429,
    description: 'Repeated rate-limit violations: the key or address is blocked for a cooling period.',
  },
  CUSTOS_SELF_APPROVAL: {
    status: 403,
    description: 'Separation of duties: nobody may approve a request they initiated.',
  },
  CUSTOS_INVALID_APPROVER_KEY: {
    status: 400,
    description: 'The approver public key or its proof of possession is invalid.',
  },
  CUSTOS_AUDIT_UNAVAILABLE: {
    status: 503,
    description: 'The audit entry could not be written, so the change was not made (fail closed).',
  },
  CUSTOS_AUDIT_CHAIN_BROKEN: {
    status: 500,
    description: 'Audit verification found an edited, missing, reordered or truncated entry.',
  },
  // --- chain adapters (src/chains) ---
  CUSTOS_CHAIN_UNSUPPORTED: {
    status: 400,
    description: 'The network or asset is not configured, or the operation is not supported on it.',
  },
  CUSTOS_CHAIN_INVALID_ADDRESS: {
    status: 400,
    description: 'The address is malformed or its checksum is wrong for this chain.',
  },
  CUSTOS_CHAIN_INVALID_TRANSACTION: {
    status: 400,
    description: 'A transfer request or an unsigned/signed transaction is malformed or inconsistent.',
  },
  CUSTOS_CHAIN_SIGNATURE_MISMATCH: {
    status: 400,
    description: 'The signature does not recover to the sending address for this transaction digest.',
  },
  CUSTOS_CHAIN_FEE_CAP_EXCEEDED: {
    status: 409,
    description: 'Current network fees exceed the configured cap; nothing was built or sent.',
  },
  CUSTOS_CHAIN_ESTIMATE_FAILED: {
    status: 422,
    description:
      'The node could not estimate gas/energy: the transfer would revert (e.g. token balance too low).',
  },
  CUSTOS_CHAIN_INSUFFICIENT_FUNDS: {
    status: 422,
    description: 'The sending address cannot pay the amount plus the maximum fee.',
  },
  CUSTOS_CHAIN_NONCE_CONFLICT: {
    status: 409,
    description: 'The nonce was already used on chain by another transaction.',
  },
  CUSTOS_CHAIN_REPLACEMENT_UNDERPRICED: {
    status: 409,
    description: 'A replacement transaction does not raise fees enough over the one it replaces.',
  },
  CUSTOS_CHAIN_BROADCAST_REJECTED: {
    status: 502,
    description: 'The chain node refused the signed transaction (details.reason says why).',
  },
  CUSTOS_CHAIN_RPC_UNAVAILABLE: {
    status: 503,
    description: 'The chain node cannot be reached, or kept failing after retries.',
  },
  CUSTOS_CHAIN_RPC_INVALID_RESPONSE: {
    status: 502,
    description: 'The chain node answered with something that does not match the expected shape.',
  },
  // --- custody: vaults, wallets, ledger, withdrawals, approvals (src/custody) ---
  CUSTOS_IDEMPOTENCY_KEY_REQUIRED: {
    status: 400,
    description: 'This write needs an Idempotency-Key header (1-255 printable characters).',
  },
  CUSTOS_INSUFFICIENT_FUNDS: {
    status: 422,
    description: 'No address of the wallet has enough available balance for the amount plus the maximum fee.',
  },
  CUSTOS_ILLEGAL_TRANSITION: {
    status: 409,
    description: 'The transaction is not in a state that allows this (details.state, details.to).',
  },
  CUSTOS_TRANSACTION_EXPIRED: {
    status: 409,
    description: 'The transaction intent has expired; its approvals are void.',
  },
  CUSTOS_APPROVAL_DUPLICATE: {
    status: 409,
    description: 'This approver (user or key) has already voted on this transaction.',
  },
  CUSTOS_APPROVAL_NOT_APPROVER: {
    status: 403,
    description: 'The signing key is not an active approver key of the caller.',
  },
  CUSTOS_APPROVAL_NOT_ENDORSED: {
    status: 403,
    description: 'The approver key has no owner endorsement, so MPC nodes would not count it.',
  },
  CUSTOS_APPROVAL_BAD_SIGNATURE: {
    status: 400,
    description: 'The approval signature is not a valid Ed25519 signature over the intent hash.',
  },
  CUSTOS_APPROVAL_INTENT_MISMATCH: {
    status: 409,
    description: 'The approval is for a different intent than the transaction now has (it changed); re-sign.',
  },
  CUSTOS_GOVERNANCE_SIGNATURE_INVALID: {
    status: 400,
    description:
      'A vault policy or approver endorsement is not signed by an active approver key of an owner.',
  },
  CUSTOS_ASSET_NOT_ENDORSED: {
    status: 409,
    description: 'A registered token has no owner endorsement yet: MPC nodes will not sign transfers of it.',
  },
  CUSTOS_VAULT_POLICY_UNSIGNED: {
    status: 409,
    description: 'The vault policy has no owner signature yet: MPC nodes will not sign for it.',
  },
  CUSTOS_VAULT_COLD_OFFLINE: {
    status: 409,
    description:
      "A cold vault's keys exist only offline: their ceremonies run on the offline cluster, never on the online MPC nodes.",
  },
  CUSTOS_OFFLINE_SIGNATURE_INVALID: {
    status: 422,
    description:
      "Imported offline signatures do not belong to this withdrawal (another transaction, intent, key or digest) or do not verify under its source address's key; nothing was changed.",
  },
} as const satisfies Record<string, { status: number; description: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Removes user:password from a URL (for errors and logs). Returns the input if it is not a URL. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.username || u.password) {
      u.username = u.username ? '***' : '';
      u.password = u.password ? '***' : '';
    }
    return u.toString();
  } catch {
    return '[unparseable url]';
  }
}
