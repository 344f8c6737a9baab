export type NetworkErrorCode =
  | 'STOPPED'
  | 'NOT_STARTED'
  | 'TIMEOUT'
  | 'NO_PEERS'
  | 'QUEUE_FULL'
  | 'TOO_LARGE'
  | 'FRAME_TOO_LARGE'
  | 'STREAM_CLOSED'
  | 'PROTOCOL'
  | 'NO_HANDLER'
  | 'BAD_PEER_ID'
  | 'PEER_NOT_ALLOWED'
  | 'PEER_NOT_ADMITTED'
  | 'INTERNALS_CHANGED'
  | 'DISPLACED'
  | 'REQUEST_FAILED'
  | 'PUBLISH_FAILED';

export class NetworkError extends Error {
  constructor(
    readonly code: NetworkErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'NetworkError';
  }
}
