/**
 * What a call made over a WebSocket can reach of its connection: its
 * subscriptions. A call over HTTP has no session (a subscription needs a
 * connection to deliver its notifications on).
 */
export interface RpcSession {
  /** Opens a subscription on this connection; returns its id. Throws RpcFault INVALID_PARAMS / TOO_MANY_SUBSCRIPTIONS. */
  subscribe(kind: string, filter: Record<string, unknown> | undefined): string;
  /** True when the subscription existed on this connection (and is now gone). */
  unsubscribe(id: string): boolean;
}
