import { chainCodeOf, RPC_ERRORS, type ErrorCodeEntry, type RpcErrorName } from './errors.js';
import type { RpcMethod } from './method.js';

export interface OpenRpcInfo {
  title: string;
  version: string;
  description?: string;
}

export interface OpenRpcError {
  code: number;
  message: string;
  data?: unknown;
}

export interface OpenRpcMethod {
  name: string;
  summary: string;
  description?: string;
  paramStructure: 'either';
  params: { name: string; summary?: string; required: boolean; schema: unknown }[];
  result: { name: string; schema: unknown };
  errors: OpenRpcError[];
  /** The notification this method leads the server to send (subscriptions). */
  'x-notification'?: { name: string; summary: string; params: { name: string; summary?: string; schema: unknown }[] };
}

export interface OpenRpcDocument {
  openrpc: '1.2.6';
  info: OpenRpcInfo;
  methods: OpenRpcMethod[];
  /** The full error table: every code any method may return, with its name and meaning. */
  'x-error-codes': { name: string; code: number; message: string; description: string; httpStatus: number }[];
}

export const DEFAULT_INFO: OpenRpcInfo = { title: 'Cloister JSON-RPC', version: '0.1.0' };

/** An application error carries its ChainErrorCode as data.code; the server's own errors do not. */
function errorOf(name: RpcErrorName): OpenRpcError {
  const entry: ErrorCodeEntry = RPC_ERRORS[name];
  return chainCodeOf(entry.code) === undefined
    ? { code: entry.code, message: entry.message }
    : { code: entry.code, message: entry.message, data: { code: name } };
}

/** The OpenRPC 1.2.6 document of a method table (the caller includes rpc.discover itself). */
export function buildOpenRpcDocument(methods: readonly RpcMethod[], info: OpenRpcInfo = DEFAULT_INFO): OpenRpcDocument {
  return {
    openrpc: '1.2.6',
    info: { ...info },
    methods: methods.map((method) => {
      const errors = method.errors ?? [];
      const entry: OpenRpcMethod = {
        name: method.name,
        summary: method.summary,
        paramStructure: 'either',
        params: method.params.map((param) => ({
          name: param.name,
          ...(param.summary === undefined ? {} : { summary: param.summary }),
          required: param.required !== false,
          schema: structuredClone(param.schema),
        })),
        result: { name: method.result.name, schema: structuredClone(method.result.schema) },
        errors: [
          // Any method with params: a schema failure, or a number the API cannot carry exactly.
          ...(method.params.length > 0 ? [{ code: RPC_ERRORS.INVALID_PARAMS.code, message: RPC_ERRORS.INVALID_PARAMS.message }, errorOf('INVALID_ARGS')] : []),
          ...errors.map(errorOf),
        ],
      };
      if (method.description !== undefined) entry.description = method.description;
      if (method.notification) {
        const { name, summary, params } = method.notification;
        entry['x-notification'] = {
          name,
          summary,
          params: params.map((p) => ({ name: p.name, ...(p.summary === undefined ? {} : { summary: p.summary }), schema: structuredClone(p.schema) })),
        };
      }
      return entry;
    }),
    'x-error-codes': Object.entries(RPC_ERRORS).map(([name, entry]: [string, ErrorCodeEntry]) => ({
      name,
      code: entry.code,
      message: entry.message,
      description: entry.description,
      httpStatus: entry.httpStatus ?? 200,
    })),
  };
}
