import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readNodeConfig, writeNodeConfig } from '../../../../node/config/read-config.js';
import { DEFAULT_RPC_LIMITS, JsonRpcServer, resolveRpcLimits } from '../../../../node/rpc/index.js';

const dir = mkdtempSync(join(tmpdir(), 'cloister-rpc-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function configWith(rpc: unknown): string {
  const file = join(dir, 'config.json');
  writeFileSync(file, JSON.stringify({ dataDir: 'data', nodeId: 'node-1', genesisFile: 'genesis.json', rpc }));
  return file;
}

describe("the node config's rpc limits", () => {
  it('reads the limits given, keeps the others at their defaults, and writes them back', () => {
    const config = readNodeConfig(configWith({ port: 9000, maxConnectionsPerClient: 8, maxBatchResponseBytes: 64 * 1024 * 1024 }));
    expect(config.rpc).toEqual({ host: '127.0.0.1', port: 9000, corsOrigins: [], maxConnectionsPerClient: 8, maxBatchResponseBytes: 64 * 1024 * 1024 });
    const server = new JsonRpcServer({ methods: [], ...config.rpc });
    expect(server.limits).toEqual({ ...DEFAULT_RPC_LIMITS, maxConnectionsPerClient: 8, maxBatchResponseBytes: 64 * 1024 * 1024 });
    const copy = join(dir, 'copy.json');
    writeNodeConfig(copy, config);
    expect(readNodeConfig(copy).rpc).toEqual(config.rpc);
  });

  it.each([
    [{ maxConections: 10 }, 'unknown member "rpc.maxConections"'],
    [{ maxConnections: 0 }, 'rpc.maxConnections must be a positive integer'],
    [{ maxBodyBytes: 1.5 }, 'rpc.maxBodyBytes must be a positive integer'],
    [{ requestTimeoutMs: '30s' }, 'rpc.requestTimeoutMs must be a positive integer'],
    [{ maxConnections: 10, maxConnectionsPerClient: 20 }, 'rpc.maxConnectionsPerClient (20) must not exceed maxConnections (10)'],
    ['all of them', 'rpc must be an object'],
    [{ metrics: 'no' }, 'rpc.metrics must be true or false'],
  ])('refuses %j', (rpc, message) => {
    expect(() => readNodeConfig(configWith(rpc))).toThrow(message);
  });

  it('reads rpc.metrics (GET /metrics on or off)', () => {
    expect(readNodeConfig(configWith({ metrics: false })).rpc.metrics).toBe(false);
    expect(readNodeConfig(configWith({})).rpc.metrics).toBeUndefined();
  });

  it('the defaults hold together', () => {
    expect(resolveRpcLimits()).toEqual(DEFAULT_RPC_LIMITS);
    expect(() => resolveRpcLimits({ maxResponseBytes: DEFAULT_RPC_LIMITS.maxBatchResponseBytes + 1 })).toThrow(/maxResponseBytes/);
  });
});
