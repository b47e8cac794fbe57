import { inspect } from 'node:util';

/**
 * Wraps a secret (API key, API secret, token) so it cannot leak by accident:
 * JSON.stringify, String(), template literals and util.inspect (so pino and
 * console.log) all print "[REDACTED]". Only `reveal()` returns the value, and
 * only code that signs requests should call it.
 */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
    Object.freeze(this);
  }

  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return '[REDACTED]';
  }

  toJSON(): string {
    return '[REDACTED]';
  }

  [inspect.custom](): string {
    return '[REDACTED]';
  }
}
