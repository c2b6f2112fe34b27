// The node's own decision whether to contribute to a request (DESIGN §3 step 6). A chain of pluggable
// authorizers, each returning allow / deny / abstain:
//   - any deny refuses the request;
//   - a signing request that carries evidence (`authorization`) needs at least one authorizer that
//     verified it and said allow — evidence nobody checks is refused, never waved through;
//   - a signing request without evidence is a raw-digest request: refused unless the key was created
//     with allowRawSigning (off by default; tests and the CLI demo turn it on).
// Later issues add authorizers here: approval signatures against owner-registered approver keys,
// verifier quorum certificates, the node's funds-flow limiter, the circuit breaker.
import type { KeyMeta } from './share-store.ts';
import type { Authorization } from './wire.ts';

export interface AuthorizeRequest {
  type: 'keygen' | 'sign' | 'refresh' | 'reshare' | 'commit' | 'unlock';
  requestId: string;
  sessionId: string;
  nodeId: number;
  keyId: string;
  /** The key as this node stores it (undefined for keygen). */
  key?: KeyMeta;
  /** Signing: the digest (ECDSA) or message (EdDSA/BIP340) to sign. */
  message?: Uint8Array;
  derivationPath?: string;
  signers?: readonly number[];
  authorization?: Authorization;
}

export type AuthorizeDecision =
  | { decision: 'allow'; by?: string }
  | { decision: 'deny'; reason: string }
  | { decision: 'abstain' };

export type Authorizer = (request: AuthorizeRequest) => AuthorizeDecision | Promise<AuthorizeDecision>;

export async function runAuthorizers(
  authorizers: readonly Authorizer[],
  request: AuthorizeRequest,
): Promise<{ ok: true } | { ok: false; reason: string }> {
  let allowed = false;
  for (const a of authorizers) {
    let d: AuthorizeDecision;
    try {
      d = await a(request);
    } catch (e) {
      return { ok: false, reason: `authorizer failed: ${(e as Error).message}` };
    }
    if (d.decision === 'deny') return { ok: false, reason: d.reason };
    if (d.decision === 'allow') allowed = true;
  }
  if (request.type !== 'sign') return { ok: true };
  if (request.authorization !== undefined) {
    return allowed
      ? { ok: true }
      : { ok: false, reason: `no authorizer accepted evidence of kind "${request.authorization.kind}"` };
  }
  if (request.key?.allowRawSigning) return { ok: true };
  return {
    ok: false,
    reason:
      'raw-digest signing without authorisation evidence is refused (key created without allowRawSigning)',
  };
}
