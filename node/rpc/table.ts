import { RpcFault } from './errors.js';
import { Lane } from './lane.js';
import type { RpcMethod } from './method.js';
import { buildOpenRpcDocument, DEFAULT_INFO, type OpenRpcDocument, type OpenRpcInfo } from './openrpc.js';
import { compileParamBinder, createAjv, type ParamBinder } from './params.js';

export interface BoundMethod {
  readonly method: RpcMethod;
  readonly bind: ParamBinder;
  /** Present when the method declares a concurrency limit. */
  readonly lane?: Lane;
}

const DISCOVER_RESULT_SCHEMA = {
  $ref: 'https://raw.githubusercontent.com/open-rpc/meta-schema/1.14.2/schema.json',
};

/**
 * The methods a server answers: validated once (unique names, param schemas
 * compiled with ajv), plus `rpc.discover`, whose OpenRPC document covers every
 * method including itself. Extend the API by passing more RpcMethod arrays.
 */
export class MethodTable {
  readonly #methods = new Map<string, BoundMethod>();
  readonly #document: OpenRpcDocument;

  constructor(methods: readonly RpcMethod[], info: OpenRpcInfo = DEFAULT_INFO) {
    const discover: RpcMethod = {
      name: 'rpc.discover',
      summary: 'Returns the OpenRPC document of this API.',
      params: [],
      result: { name: 'OpenRPC Schema', schema: DISCOVER_RESULT_SCHEMA },
      handler: () => this.#document,
    };
    const all = [...methods, discover];
    const ajv = createAjv();
    for (const method of all) {
      if (this.#methods.has(method.name)) throw new Error(`duplicate JSON-RPC method ${method.name}`);
      if (method.name.startsWith('rpc.') && method !== discover) throw new Error(`method names starting with "rpc." are reserved: ${method.name}`);
      const { concurrency } = method;
      const lane = concurrency ? new Lane(method.name, concurrency.maxInFlight, concurrency.maxWaiting) : undefined;
      this.#methods.set(method.name, { method, bind: compileParamBinder(ajv, method), ...(lane ? { lane } : {}) });
    }
    this.#document = deepFreeze(buildOpenRpcDocument(all, info));
  }

  get(name: string): BoundMethod | undefined {
    return this.#methods.get(name);
  }

  /** Method names, in registration order (rpc.discover last). */
  names(): string[] {
    return [...this.#methods.keys()];
  }

  get document(): OpenRpcDocument {
    return this.#document;
  }

  /** Throws -32601 for an unknown method. */
  resolve(name: string): BoundMethod {
    const bound = this.#methods.get(name);
    if (!bound) throw RpcFault.of('METHOD_NOT_FOUND');
    return bound;
  }
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const item of Object.values(value)) deepFreeze(item);
  }
  return value;
}
