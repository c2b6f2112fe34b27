// The ordered list of migrations. Names are date-prefixed and frozen once shipped.
import type { Migration } from 'kysely';
import * as m0001 from './2026-11-22-0001-foundation.ts';
import * as m0002 from './2026-11-22-0002-identity-audit.ts';
import * as m0003 from './2026-11-22-0003-custody.ts';
import * as m0004 from './2026-11-22-0004-chain-state.ts';
import * as m0005 from './2026-12-03-0001-environments.ts';
import * as m0006 from './2026-12-04-0001-asset-endorsements.ts';
import * as m0007 from './2026-12-04-0002-event-relay.ts';

export const MIGRATIONS: Record<string, Migration> = {
  '2026-11-22-0001-foundation': m0001,
  '2026-11-22-0002-identity-audit': m0002,
  '2026-11-22-0003-custody': m0003,
  '2026-11-22-0004-chain-state': m0004,
  '2026-12-03-0001-environments': m0005,
  '2026-12-04-0001-asset-endorsements': m0006,
  '2026-12-04-0002-event-relay': m0007,
};
