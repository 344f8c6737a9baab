import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
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
  const known = ['dataDir', 'nodeId', 'genesisFile', 'rpc', 'enclave', 'log'];
  for (const key of Object.keys(c)) if (!known.includes(key)) fail(`unknown member "${key}"`);
  const str = (v: unknown, name: string): string => (typeof v === 'string' && v.length > 0 ? v : fail(`${name} must be a non-empty string`));
  const rpc = (c.rpc ?? {}) as Record<string, unknown>;
  const enclave = (c.enclave ?? {}) as Record<string, unknown>;
  const log = (c.log ?? {}) as Record<string, unknown>;
  const port = rpc.port ?? 8545;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) fail('rpc.port must be a TCP port');
  const cors = rpc.corsOrigins ?? [];
  if (!Array.isArray(cors) || cors.some((o) => typeof o !== 'string')) fail('rpc.corsOrigins must be an array of origins');
  const platform = enclave.platform ?? 'virtual';
  if (platform !== 'virtual') fail(`enclave.platform "${String(platform)}" is not supported by this version (only "virtual")`);
  const level = log.level ?? 'info';
  if (!['debug', 'info', 'warn', 'error'].includes(level as string)) fail('log.level must be debug, info, warn or error');
  const format = log.format ?? 'pretty';
  if (format !== 'pretty' && format !== 'json') fail('log.format must be pretty or json');
  const dataDir = resolve(base, str(c.dataDir, 'dataDir'));
  return {
    dataDir,
    nodeId: str(c.nodeId, 'nodeId'),
    genesisFile: resolve(base, str(c.genesisFile, 'genesisFile')),
    rpc: { host: typeof rpc.host === 'string' ? rpc.host : '127.0.0.1', port: port as number, corsOrigins: cors as string[] },
    enclave: {
      platform: 'virtual',
      virtualRootFile: resolve(base, typeof enclave.virtualRootFile === 'string' ? enclave.virtualRootFile : resolve(dataDir, 'virtual-root.json')),
    },
    log: { level: level as NodeConfig['log']['level'], format: format as NodeConfig['log']['format'] },
  };
}
