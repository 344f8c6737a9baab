import { CONTRACT_NAME_RE, METHOD_NAME_RE } from '../../consensus/index.js';
import { ContractError } from './errors.js';

/** One callable method of a contract. */
export interface ContractMethod {
  /** A read-only method may read state but never write it or emit events. */
  readonly: boolean;
  description?: string;
}

/**
 * manifest.json, after validation. It lists the methods the contract exposes;
 * a method that is not listed cannot be called even if contract.js exports it.
 * The optional method `init` runs once, at deployment, and is never callable later.
 */
export interface ContractManifest {
  /** Matches CONTRACT_NAME_RE (lower case, digits, `_` and `-`, at most 64 characters). */
  name: string;
  /** Semantic version `MAJOR.MINOR.PATCH` with an optional pre-release / build suffix. */
  version: string;
  description?: string;
  /**
   * A confidential contract: its transactions and calls arrive sealed to the
   * network key, its results and events leave sealed to the sender, and its
   * state is stored encrypted (contracts/enclave/confidential-state.ts).
   * Present only when true.
   */
  confidential?: true;
  /** Method name (METHOD_NAME_RE) -> method. At least one method besides `init`. */
  methods: Record<string, ContractMethod>;
}

/** The method run at deployment, if the manifest lists it. */
export const INIT_METHOD = 'init';

export const MAX_DESCRIPTION_LENGTH = 1024;
export const MAX_METHODS = 256;

const SEMVER_RE =
  /^(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$/;
const MAX_VERSION_LENGTH = 64;

/** Matches a UTF-16 surrogate that is not part of a pair (text that is not valid Unicode). */
export const LONE_SURROGATE_RE = /\p{Cs}/u;

const MANIFEST_KEYS = new Set(['name', 'version', 'description', 'confidential', 'methods']);
/** Names the chain keeps for its own system contract. */
export const RESERVED_CONTRACT_NAMES: ReadonlySet<string> = new Set(['consortium']);
const METHOD_KEYS = new Set(['readonly', 'description']);
/** Names that would collide with object internals when used as keys. */
const FORBIDDEN_METHOD_NAMES = new Set(['__proto__', 'constructor', 'prototype']);

function fail(message: string): never {
  throw new ContractError('MANIFEST_INVALID', message);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

function checkDescription(value: unknown, where: string): string {
  if (typeof value !== 'string') fail(`${where}.description must be a string`);
  if (value.length > MAX_DESCRIPTION_LENGTH) fail(`${where}.description is longer than ${MAX_DESCRIPTION_LENGTH} characters`);
  if (LONE_SURROGATE_RE.test(value)) fail(`${where}.description contains a lone surrogate`);
  return value;
}

/**
 * Validates a parsed manifest.json strictly and returns a fresh, normalised copy
 * (only known fields, optional fields omitted when absent) that is safe to
 * canonicalise and hash. Throws ContractError('MANIFEST_INVALID').
 */
export function parseManifest(json: unknown): ContractManifest {
  if (!isPlainObject(json)) fail('the manifest must be a JSON object');
  for (const key of Object.keys(json)) {
    if (!MANIFEST_KEYS.has(key)) fail(`unknown manifest field "${key}"`);
  }
  const { name, version, description, methods, confidential } = json;
  if (typeof name !== 'string' || !CONTRACT_NAME_RE.test(name)) {
    fail(`name must match ${CONTRACT_NAME_RE.source}`);
  }
  if (RESERVED_CONTRACT_NAMES.has(name)) fail(`the name "${name}" is reserved for the chain's system contract`);
  if (confidential !== undefined && typeof confidential !== 'boolean') fail('confidential must be true or false');
  if (typeof version !== 'string' || version.length > MAX_VERSION_LENGTH || !SEMVER_RE.test(version)) {
    fail('version must be a semantic version such as "1.0.0"');
  }
  if (!isPlainObject(methods)) fail('methods must be an object of method name -> { readonly, description? }');
  const names = Object.keys(methods);
  if (names.length > MAX_METHODS) fail(`at most ${MAX_METHODS} methods`);
  const out: Record<string, ContractMethod> = {};
  for (const methodName of names) {
    if (!METHOD_NAME_RE.test(methodName) || FORBIDDEN_METHOD_NAMES.has(methodName)) {
      fail(`method name "${methodName}" must match ${METHOD_NAME_RE.source} and not be __proto__, constructor or prototype`);
    }
    const method = methods[methodName];
    const where = `methods.${methodName}`;
    if (!isPlainObject(method)) fail(`${where} must be an object { readonly, description? }`);
    for (const key of Object.keys(method)) {
      if (!METHOD_KEYS.has(key)) fail(`unknown field "${key}" in ${where}`);
    }
    if (typeof method.readonly !== 'boolean') fail(`${where}.readonly must be true or false`);
    if (methodName === INIT_METHOD && method.readonly) fail('init runs at deployment to set up state: it cannot be readonly');
    const entry: ContractMethod = { readonly: method.readonly };
    if (method.description !== undefined) entry.description = checkDescription(method.description, where);
    out[methodName] = entry;
  }
  if (!names.some((n) => n !== INIT_METHOD)) fail('the manifest must list at least one method besides init');
  const manifest: ContractManifest = { name, version, methods: out };
  if (description !== undefined) manifest.description = checkDescription(description, 'manifest');
  // Normalised away when false, so a public contract's measurement does not depend on whether it said so.
  if (confidential === true) manifest.confidential = true;
  return manifest;
}

/** The manifest entry of a method that may be called after deployment, or undefined. */
export function callableMethod(manifest: ContractManifest, method: string): ContractMethod | undefined {
  if (method === INIT_METHOD || !Object.prototype.hasOwnProperty.call(manifest.methods, method)) return undefined;
  return manifest.methods[method];
}
