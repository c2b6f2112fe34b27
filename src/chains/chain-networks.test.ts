import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../config.ts';
import { ChainError } from '../errors.ts';
import { resolveNetwork } from './networks.ts';
import { createChainRegistry } from './registry.ts';

test('presets: every EVM network is configuration; operator fields override', () => {
  for (const id of ['ethereum', 'polygon', 'arbitrum', 'optimism', 'bsc', 'base']) {
    const n = resolveNetwork({ id, rpcUrl: 'https://rpc.example' });
    assert.equal(n.family, 'evm');
  }
  const bsc = resolveNetwork({ id: 'bsc', rpcUrl: 'https://rpc.example' });
  assert.equal(bsc.family === 'evm' && bsc.txType, 'legacy');
  const eth = resolveNetwork({
    id: 'ethereum',
    rpcUrl: 'https://x',
    confirmations: 64,
    fees: { maxFeePerGasCap: '1000' },
  });
  assert.ok(eth.family === 'evm' && eth.confirmations === 64 && eth.fees.maxFeePerGasCap === 1000n);
  assert.equal(eth.family === 'evm' && eth.fees.baseFeeMultiplierPercent, 200, 'other fee fields kept');
  // Any other EVM chain: no preset, everything given.
  const custom = resolveNetwork({
    id: 'mychain',
    preset: 'ethereum',
    chainId: 999,
    rpcUrl: 'https://x',
    tokens: [],
  });
  assert.equal(custom.family === 'evm' && custom.chainId, 999);
  assert.throws(() => resolveNetwork({ id: 'nope' }), ChainError);
  assert.throws(() => resolveNetwork({ id: 'x', preset: 'ethereum', rpcUrl: 'ftp://x' }), /rpcUrl/);
  assert.throws(
    () =>
      resolveNetwork({
        id: 'x',
        preset: 'ethereum',
        rpcUrl: 'https://x',
        tokens: [{ symbol: 'A', contract: '0xdAC17F958D2ee523a2206206994597C13D831ec8', decimals: 6 }],
      }),
    /bad contract/,
  );
});

test('registry from CUSTOS_NETWORKS', () => {
  const config = loadConfig({
    env: {
      CUSTOS_NETWORKS: JSON.stringify([
        { id: 'ethereum', rpcUrl: 'https://mainnet.example/v3/secretkey' },
        { id: 'tron' },
      ]),
    },
    cwd: '/nonexistent',
  });
  const reg = createChainRegistry({ networks: config.networks });
  assert.deepEqual(
    reg.list().map((a) => [a.network, a.family]),
    [
      ['ethereum', 'evm'],
      ['tron', 'tron'],
    ],
  );
  assert.equal(reg.get('tron').asset('USDT').contract, 'TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t');
  assert.throws(
    () => reg.get('polygon'),
    (e: unknown) => e instanceof ChainError && e.code === 'CUSTOS_CHAIN_UNSUPPORTED',
  );
  assert.throws(
    () => loadConfig({ env: { CUSTOS_NETWORKS: '{"id":1}' }, cwd: '/nonexistent' }),
    /CUSTOS_NETWORKS/,
  );
});
