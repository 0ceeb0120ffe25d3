// `ctx.setSecretOutput(name, value)`: the secret values a job hands on to the jobs that need it.
// One SecretOutputs per job checks and collects them (env-var-style names, at most 20 per job,
// each value a non-empty string of at most 64 KiB of UTF-8), has each value masked in
// everything the runner sends from then on, and lists them for job.complete (`secretOutputs`).
// It does not encrypt or deliver them (the host does, as `secrets` of the downstream jobs).

/** Most distinct names one job may set. */
export const MAX_SECRET_OUTPUTS = 20;

/** Largest value, in bytes of UTF-8. */
export const MAX_SECRET_OUTPUT_BYTES = 65536;

/** An environment-variable-style name: downstream jobs may expose it as one. */
const OUTPUT_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export class SecretOutputs {
  #values = new Map();
  #mask;

  /** @param {(values: string[]) => void} mask masks values in every text sent from now on */
  constructor(mask) {
    this.#mask = mask;
  }

  /** Sets (or replaces) the output `name`; throws when the name, the value or the count is wrong. */
  set(name, value) {
    if (typeof name !== 'string' || !OUTPUT_NAME.test(name)) {
      // The name is not quoted: with the arguments swapped it would be the secret value.
      throw new TypeError(
        'setSecretOutput: the name must be an environment variable name such as DEPLOY_TOKEN (letters, digits and _, not starting with a digit)',
      );
    }
    if (typeof value !== 'string' || value === '') {
      throw new TypeError(`setSecretOutput: the value of '${name}' must be a non-empty string`);
    }
    // Masked even when a limit rejects it: the step meant it to be secret.
    this.#mask([value]);
    const bytes = Buffer.byteLength(value, 'utf8');
    if (bytes > MAX_SECRET_OUTPUT_BYTES) {
      throw new RangeError(`setSecretOutput: '${name}' is ${bytes} bytes; at most ${MAX_SECRET_OUTPUT_BYTES}`);
    }
    if (!this.#values.has(name) && this.#values.size >= MAX_SECRET_OUTPUTS) {
      const names = [...this.#values.keys()].sort().join(', ');
      throw new RangeError(
        `setSecretOutput: at most ${MAX_SECRET_OUTPUTS} secret outputs per job (already set: ${names})`,
      );
    }
    this.#values.set(name, value);
  }

  /** `{NAME: value}` in the order the names were first set; undefined when none was set. */
  toMessage() {
    return this.#values.size === 0 ? undefined : Object.fromEntries(this.#values);
  }
}
