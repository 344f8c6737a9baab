/** The host's clock, injected so tests can control it. Consensus and contracts never read it. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };
