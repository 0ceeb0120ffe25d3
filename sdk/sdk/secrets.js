// SecretNotFoundError: what `ctx.secrets.get(name)` rejects with (and `getMeta`, `expose`,
// `mountFile`, `exposeFile` throw) when the job has no secret of that name. It lives in the SDK
// so that authors can `import { SecretNotFoundError } from '@kici-dev/sdk'` and test
// `instanceof`; the runner (@kici-dev/engine) throws it. Reading secrets is the runner's job.

export class SecretNotFoundError extends Error {
  /**
   * @param {string} secretName the name asked for
   * @param {string[]} available the names the job has, sorted
   */
  constructor(secretName, available) {
    super(
      `Secret '${secretName}' not found. Available secrets: ${available.length > 0 ? available.join(', ') : '(none)'}`,
    );
    this.name = 'SecretNotFoundError';
    this.secretName = secretName;
    this.available = available;
  }
}
