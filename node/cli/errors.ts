/** A failure the CLI reports as one line and a non-zero exit status. */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

export function parseJsonArg(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new CliError(`${what} is not valid JSON: ${text}`);
  }
}

/** A repeatable option's values, in order (commander's accumulator). */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

export function parsePort(text: string): number {
  const port = Number(text);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new CliError(`not a TCP port: ${text}`);
  return port;
}

export function parsePositiveInt(text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n <= 0) throw new CliError(`not a positive integer: ${text}`);
  return n;
}

export function parseNonNegativeInt(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n)) throw new CliError(`not a non-negative integer: ${text}`);
  return n;
}
