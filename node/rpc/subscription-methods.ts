import { RpcFault } from './errors.js';
import { defineMethod, type NotificationSpec, type RpcMethod } from './method.js';
import type { CallContext } from './response-budget.js';
import * as s from './schemas.js';
import { NOTIFICATION_METHOD, SUBSCRIPTION_KINDS } from './subscriptions.js';

const subscriptionId: s.JsonSchema = { type: 'string', pattern: '^[0-9a-f]{32}$', description: 'A subscription id: 16 random bytes, lowercase hex.' };

const filter: s.JsonSchema = {
  type: 'object',
  description: 'receipts: { contract?, txHash? } (contract: the contract the transaction called); events: { contract?, name? }; newHeads: none. A notification matches every member given.',
  additionalProperties: false,
  properties: { contract: s.contractName, txHash: s.hash32, name: { type: 'string', minLength: 1, maxLength: 256 } },
};

/** The session of a WebSocket call; over HTTP there is none, and the call says where to go instead. */
function sessionOf(context: CallContext): NonNullable<CallContext['session']> {
  if (!context.session) throw RpcFault.of('WEBSOCKET_REQUIRED');
  return context.session;
}

/** The notification's shape, for the OpenRPC document (x-notifications). */
export const SUBSCRIPTION_NOTIFICATION: NotificationSpec = {
  name: NOTIFICATION_METHOD,
  summary: 'Sent on a WebSocket for each item a subscription delivers.',
  params: [
    { name: 'subscription', schema: subscriptionId },
    { name: 'result', schema: { description: 'newHeads: BlockView (transactions as hashes); receipts: ReceiptView; events: EventNotification.' } },
  ],
};

/**
 * chain_subscribe / chain_unsubscribe: served over a WebSocket only (the
 * notifications need the connection). Notifications are
 * `{"jsonrpc":"2.0","method":"chain_subscription","params":{"subscription":id,"result":…}}`.
 */
export function subscriptionMethods(): RpcMethod[] {
  return [
    defineMethod({
      name: 'chain_subscribe',
      summary: 'Opens a subscription on this WebSocket; returns its id. Over HTTP: WEBSOCKET_REQUIRED.',
      description:
        `Notifications come as the JSON-RPC notification "${NOTIFICATION_METHOD}" with params {subscription, result}, one block at a time in height order, from the first block committed after the subscription, with no gap and no duplicate. ` +
        'newHeads: result is the block as chain_getBlockByNumber(height, false) returns it. receipts: each committed transaction\'s receipt, as chain_getTransactionReceipt returns it. ' +
        'events: {blockHeight, blockHash, txHash, txIndex, eventIndex, contract, name, data} for each event. A connection that does not take its notifications (more than maxSocketBufferedBytes waiting) is closed with code 1008 and its subscriptions dropped.',
      params: [
        { name: 'kind', schema: { type: 'string', enum: [...SUBSCRIPTION_KINDS] } },
        { name: 'filter', schema: filter, required: false },
      ],
      result: { name: 'subscriptionId', schema: subscriptionId },
      errors: ['WEBSOCKET_REQUIRED', 'TOO_MANY_SUBSCRIPTIONS'],
      notification: SUBSCRIPTION_NOTIFICATION,
      handler: (kind: string, filterValue: Record<string, unknown> | undefined, context: CallContext) => sessionOf(context).subscribe(kind, filterValue),
    }),
    defineMethod({
      name: 'chain_unsubscribe',
      summary: 'Ends a subscription of this WebSocket: true if it existed on this connection, else false. Over HTTP: WEBSOCKET_REQUIRED.',
      params: [{ name: 'id', schema: { type: 'string', maxLength: 64 } }],
      result: { name: 'existed', schema: { type: 'boolean' } },
      errors: ['WEBSOCKET_REQUIRED'],
      handler: (id: string, context: CallContext) => sessionOf(context).unsubscribe(id),
    }),
  ];
}

