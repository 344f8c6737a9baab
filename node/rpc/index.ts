export { JsonRpcServer, type JsonRpcServerOptions, type MetricsEndpoint } from './server.js';
export { chainMethods } from './methods.js';
export { networkMethods, type NetworkApi, type NodeView } from './network-methods.js';
export { governanceMethods, type GovernanceApi } from './governance-methods.js';
export { MethodTable } from './table.js';
export { subscriptionMethods } from './subscription-methods.js';
export {
  SubscriptionHub,
  HubSession,
  NOTIFICATION_METHOD,
  SUBSCRIPTION_KINDS,
  type BlockFeed,
  type EventNotification,
  type NotificationSink,
  type SubscriptionKind,
} from './subscriptions.js';
export type { RpcSession } from './session.js';
export { Dispatcher, replyText, type DispatcherOptions, type DispatchOptions, type RpcReply } from './dispatch.js';
export { DEFAULT_RPC_LIMITS, RPC_LIMIT_NAMES, resolveRpcLimits, type RpcLimits } from './limits.js';
export { BytePool, ByteLease } from './byte-pool.js';
export { ClientTracker, clientKey } from './clients.js';
export type { CallContext } from './response-budget.js';
export { defineMethod, type MethodConcurrency, type NotificationSpec, type ParamSpec, type ResultSpec, type RpcMethod } from './method.js';
export {
  RPC_ERRORS,
  RpcErrorCodes,
  RpcFault,
  chainCodeOf,
  chainErrorObject,
  httpStatusOf,
  type ErrorCodeEntry,
  type JsonRpcErrorObject,
  type RpcErrorName,
} from './errors.js';
export { buildOpenRpcDocument, type OpenRpcDocument, type OpenRpcInfo, type OpenRpcMethod } from './openrpc.js';
export type { CorsOptions } from './cors.js';
export { consoleLogger, silentLogger, type RpcLogger } from './logger.js';
export type { JsonRpcId, JsonRpcRequest, JsonRpcResponse, JsonRpcParams } from './protocol.js';
export type { JsonSchema } from './schemas.js';
