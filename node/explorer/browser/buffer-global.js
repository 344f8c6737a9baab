// Injected into the explorer's browser build of the verifier: the code it shares with the node uses Buffer.
export { Buffer } from 'buffer';
