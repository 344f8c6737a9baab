import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { RPC_LIMIT_NAMES, resolveRpcLimits, type RpcLimits } from '../rpc/index.js';
import type { NodeConfig } from './node-config.js';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = 'CONFIG_INVALID';
}

/**
 * Reads a node's config.json. Relative paths in it are relative to the file, so
 * a data directory can be moved whole. Unknown members are refused (a typo must
 * not silently fall back to a default).
 */
export function readNodeConfig(file: string): NodeConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError(`cannot read ${file}: ${(err as Error).message}`);
  }
  const base = dirname(resolve(file));
  const fail = (why: string): never => {
    throw new ConfigError(`${file}: ${why}`);
  };
  const c = raw as Record<string, unknown>;
  if (typeof c !== 'object' || c === null || Array.isArray(c)) fail('not a JSON object');
  const known = ['dataDir', 'nodeId', 'genesisFile', 'rpc', 'p2p', 'enclave', 'log'];
  for (const key of Object.keys(c)) if (!known.includes(key)) fail(`unknown member "${key}"`);
  const str = (v: unknown, name: string): string => (typeof v === 'string' && v.length > 0 ? v : fail(`${name} must be a non-empty string`));
  const rpc = (c.rpc ?? {}) as Record<string, unknown>;
  if (typeof rpc !== 'object' || rpc === null || Array.isArray(rpc)) fail('rpc must be an object');
  const rpcMembers: readonly string[] = ['host', 'port', 'corsOrigins', 'explorer', 'metrics', ...RPC_LIMIT_NAMES];
  for (const key of Object.keys(rpc)) if (!rpcMembers.includes(key)) fail(`unknown member "rpc.${key}"`);
  const limits: Partial<RpcLimits> = {};
  for (const name of RPC_LIMIT_NAMES) if (rpc[name] !== undefined) limits[name] = rpc[name] as number;
  try {
    resolveRpcLimits(limits);
  } catch (err) {
    fail(`rpc.${(err as Error).message}`);
  }
  const enclave = (c.enclave ?? {}) as Record<string, unknown>;
  const log = (c.log ?? {}) as Record<string, unknown>;
  const port = rpc.port ?? 8545;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) fail('rpc.port must be a TCP port');
  const cors = rpc.corsOrigins ?? [];
  if (!Array.isArray(cors) || cors.some((o) => typeof o !== 'string')) fail('rpc.corsOrigins must be an array of origins');
  if (rpc.explorer !== undefined && typeof rpc.explorer !== 'boolean') fail('rpc.explorer must be true or false');
  if (rpc.metrics !== undefined && typeof rpc.metrics !== 'boolean') fail('rpc.metrics must be true or false');
  const platform = enclave.platform ?? 'virtual';
  if (platform !== 'virtual') fail(`enclave.platform "${String(platform)}" is not supported by this version (only "virtual")`);
  const level = log.level ?? 'info';
  if (!['debug', 'info', 'warn', 'error'].includes(level as string)) fail('log.level must be debug, info, warn or error');
  const format = log.format ?? 'pretty';
  if (format !== 'pretty' && format !== 'json') fail('log.format must be pretty or json');
  const dataDir = resolve(base, str(c.dataDir, 'dataDir'));
  let p2p: NodeConfig['p2p'];
  if (c.p2p !== undefined) {
    const p = c.p2p as Record<string, unknown>;
    if (typeof p !== 'object' || p === null || Array.isArray(p)) fail('p2p must be an object');
    for (const key of Object.keys(p)) if (key !== 'listen' && key !== 'peers') fail(`unknown member "p2p.${key}"`);
    const addrs = (v: unknown, name: string): string[] =>
      Array.isArray(v) && v.every((a) => typeof a === 'string' && a.startsWith('/')) ? (v as string[]) : fail(`${name} must be an array of multiaddrs`);
    p2p = { listen: addrs(p.listen ?? [], 'p2p.listen'), peers: addrs(p.peers ?? [], 'p2p.peers') };
    if (p2p.listen.length === 0) fail('p2p.listen needs at least one address');
  }
  return {
    dataDir,
    nodeId: str(c.nodeId, 'nodeId'),
    genesisFile: resolve(base, str(c.genesisFile, 'genesisFile')),
    rpc: { host: typeof rpc.host === 'string' ? rpc.host : '127.0.0.1', port: port as number, corsOrigins: cors as string[], ...(rpc.explorer === undefined ? {} : { explorer: rpc.explorer as boolean }), ...(rpc.metrics === undefined ? {} : { metrics: rpc.metrics as boolean }), ...limits },
    ...(p2p ? { p2p } : {}),
    enclave: {
      platform: 'virtual',
      virtualRootFile: resolve(base, typeof enclave.virtualRootFile === 'string' ? enclave.virtualRootFile : resolve(dataDir, 'virtual-root.json')),
    },
    log: { level: level as NodeConfig['log']['level'], format: format as NodeConfig['log']['format'] },
  };
}

/** Writes a config.json with paths relative to its own directory (so the directory can be moved whole). */
export function writeNodeConfig(file: string, config: NodeConfig): void {
  const base = dirname(resolve(file));
  const rel = (p: string): string => relative(base, p) || '.';
  const out = {
    dataDir: rel(config.dataDir),
    nodeId: config.nodeId,
    genesisFile: rel(config.genesisFile),
    rpc: config.rpc,
    ...(config.p2p ? { p2p: config.p2p } : {}),
    enclave: { platform: config.enclave.platform, virtualRootFile: rel(config.enclave.virtualRootFile) },
    log: config.log,
  };
  writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
}
