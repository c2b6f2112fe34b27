// The screening step (DESIGN §3 step 2): where the policy engine of a later issue will decide. For
// now one default policy:
//   cold  → the vault's required approvals (at least one); then signed on the offline cluster
//   warm  → the vault's required approvals (at least one)
//   hot   → automatic up to the wallet's hot limit (no limit set = automatic), above it the
//           vault's required approvals (at least one)
export interface ScreeningInput {
  tier: 'hot' | 'warm' | 'cold';
  vaultRequiredApprovals: number;
  /** Per-wallet automatic limit in base units of the withdrawn asset; null = none. */
  hotLimit: bigint | null;
  amount: bigint;
}

export interface ScreeningResult {
  policy: 'default/v1';
  outcome: 'approve' | 'require_approvals' | 'reject';
  requiredApprovals: number;
  reasons: string[];
}

export function screenWithdrawal(i: ScreeningInput): ScreeningResult {
  const approvals = Math.max(1, i.vaultRequiredApprovals);
  if (i.tier === 'cold') {
    return {
      policy: 'default/v1',
      outcome: 'require_approvals',
      requiredApprovals: approvals,
      reasons: [`cold vault: ${approvals} approval(s), then signed on the offline cluster`],
    };
  }
  if (i.tier === 'warm') {
    return {
      policy: 'default/v1',
      outcome: 'require_approvals',
      requiredApprovals: approvals,
      reasons: [`warm vault: ${approvals} approval(s)`],
    };
  }
  if (i.hotLimit !== null && i.amount > i.hotLimit) {
    return {
      policy: 'default/v1',
      outcome: 'require_approvals',
      requiredApprovals: approvals,
      reasons: [`hot vault: amount above the wallet limit ${i.hotLimit}`],
    };
  }
  return {
    policy: 'default/v1',
    outcome: 'approve',
    requiredApprovals: 0,
    reasons: [i.hotLimit === null ? 'hot vault: no limit set' : 'hot vault: within the wallet limit'],
  };
}
