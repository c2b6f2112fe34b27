// The withdrawal state machine (docs/custody.md has the diagram). Every transition goes through
// `assertTransition`; anything not listed here is refused with CUSTOS_ILLEGAL_TRANSITION.
import { CustodyError } from '../errors.ts';

export const TX_STATES = [
  'created',
  'screening',
  'pending_approval',
  'approved',
  'pending_signature',
  'signing',
  'broadcast',
  'confirming',
  'completed',
  'rejected',
  'cancelled',
  'expired',
  'failed',
] as const;
export type TxState = (typeof TX_STATES)[number];

export const TRANSITIONS: Readonly<Record<TxState, readonly TxState[]>> = {
  created: ['screening', 'cancelled', 'failed'],
  screening: ['pending_approval', 'approved', 'rejected', 'failed'],
  pending_approval: ['approved', 'rejected', 'cancelled', 'expired'],
  // approved → pending_signature: a cold vault's withdrawal waits for the offline cluster's
  // signatures (exported as a signing request, imported with POST …/signatures → signing).
  approved: ['signing', 'pending_signature', 'cancelled', 'expired', 'failed'],
  pending_signature: ['signing', 'cancelled', 'expired', 'failed'],
  signing: ['broadcast', 'failed'],
  broadcast: ['confirming', 'failed'],
  // confirming → broadcast: its block was reorganised away (the transaction waits to be mined again).
  confirming: ['completed', 'failed', 'broadcast'],
  completed: [],
  rejected: [],
  cancelled: [],
  expired: [],
  failed: [],
};

/** Terminal states that give the reservation back to `available`. */
export const RELEASING: ReadonlySet<TxState> = new Set(['rejected', 'cancelled', 'expired', 'failed']);
export const TERMINAL: ReadonlySet<TxState> = new Set([
  'completed',
  'rejected',
  'cancelled',
  'expired',
  'failed',
]);

export function canTransition(from: string, to: TxState): boolean {
  return (TRANSITIONS[from as TxState] ?? []).includes(to);
}

export function assertTransition(from: string, to: TxState): void {
  if (!canTransition(from, to)) {
    throw new CustodyError('CUSTOS_ILLEGAL_TRANSITION', `a ${from} transaction cannot become ${to}`, {
      details: { state: from, to },
    });
  }
}
