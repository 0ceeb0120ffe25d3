// The install options of a workflow: `registries` (npm registries the agent authenticates to
// when it installs the workflow's `.kici` dependencies) and `installEnv` (secrets handed to that
// install as env vars). Both name secrets as `'<environment>:<name>'`, never their values: the
// orchestrator resolves them and the agent writes a transient `.npmrc` / env, so the lock file
// holds no token. Checked at import so a typo fails the compile, not the first install.

import { describeValue, didYouMean, isObject, toList } from './common.js';

const REGISTRY_KEYS = ['url', 'scope', 'tokenSecret', 'alwaysAuth'];
const REGISTRY_EXAMPLE =
  "e.g. registries: [{ url: 'https://npm.example.com/', scope: '@acme', tokenSecret: 'production:NPM_TOKEN' }]";
const SCOPE = /^@[a-z0-9][a-z0-9._-]*$/;
const ENV_VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The environment and name of a `'<environment>:<name>'` reference (name without ':'), or undefined. */
function parseSecretRef(value) {
  if (typeof value !== 'string') return undefined;
  const colon = value.lastIndexOf(':');
  const environment = value.slice(0, colon);
  const name = value.slice(colon + 1);
  return colon > 0 && name !== '' ? { environment, name } : undefined;
}

function isHttpUrl(value) {
  if (typeof value !== 'string') return false;
  try {
    const { protocol } = new URL(value);
    return protocol === 'http:' || protocol === 'https:';
  } catch {
    return false;
  }
}

/** One entry as `{url, scope?, tokenSecret, alwaysAuth}`. */
function normalizeRegistry(entry, where, fail) {
  if (!isObject(entry)) throw fail(`${where} must be {url, scope?, tokenSecret, alwaysAuth?}`, REGISTRY_EXAMPLE);
  const unknown = Object.keys(entry).find((key) => !REGISTRY_KEYS.includes(key));
  if (unknown !== undefined) {
    throw fail(
      `${where} has no option '${unknown}' (use url, scope, tokenSecret or alwaysAuth)`,
      `${didYouMean(unknown, REGISTRY_KEYS)}${REGISTRY_EXAMPLE}`,
    );
  }
  const { url, scope, tokenSecret, alwaysAuth = true } = entry;
  if (!isHttpUrl(url)) {
    throw fail(`${where}.url must be an http or https URL, got ${describeValue(url)}`, REGISTRY_EXAMPLE);
  }
  if (scope !== undefined && !(typeof scope === 'string' && SCOPE.test(scope))) {
    throw fail(
      `${where}.scope must be an npm scope such as '@acme', got ${describeValue(scope)}`,
      'leave scope out for the registry of unscoped packages',
    );
  }
  if (parseSecretRef(tokenSecret) === undefined) {
    throw fail(
      `${where}.tokenSecret must be '<environment>:<secret name>', got ${describeValue(tokenSecret)}`,
      "e.g. tokenSecret: 'production:NPM_TOKEN' (the secret NPM_TOKEN of the environment production)",
    );
  }
  if (typeof alwaysAuth !== 'boolean') {
    throw fail(`${where}.alwaysAuth must be true or false`, 'leave alwaysAuth out for true');
  }
  const normalized = { url };
  if (scope !== undefined) normalized.scope = scope;
  normalized.tokenSecret = tokenSecret;
  normalized.alwaysAuth = alwaysAuth;
  return normalized;
}

/**
 * `registries` as `[{url, scope?, tokenSecret, alwaysAuth}]` (a single entry is a list of one);
 * undefined when not given or empty. At most one entry without a scope (the default registry),
 * no scope twice.
 * @param {(message: string, suggestion: string) => Error} fail builds the workflow's error
 */
export function normalizeRegistries(registries, fail) {
  const entries = toList(registries).map((entry, index) => normalizeRegistry(entry, `registries[${index}]`, fail));
  const firstOfScope = new Map();
  entries.forEach(({ scope }, index) => {
    const earlier = firstOfScope.get(scope);
    if (earlier === undefined) {
      firstOfScope.set(scope, index);
    } else if (scope === undefined) {
      throw fail(
        `registries[${index}] has no scope, like registries[${earlier}]: only one registry can serve unscoped packages`,
        "give the other one the scope of its packages, e.g. scope: '@acme'",
      );
    } else {
      throw fail(`registries[${index}] has scope '${scope}', like registries[${earlier}]`, 'keep one registry per scope');
    }
  });
  return entries.length > 0 ? entries : undefined;
}

/**
 * `installEnv` as a list of `'<environment>:<name>'` strings (a single one is a list of one);
 * undefined when not given or empty. `<name>` becomes an env var of the install, so it must be
 * an env-var name, and no two entries may set the same one.
 * @param {(message: string, suggestion: string) => Error} fail builds the workflow's error
 */
export function normalizeInstallEnv(installEnv, fail) {
  const entries = toList(installEnv);
  const firstOfName = new Map();
  entries.forEach((entry, index) => {
    const ref = parseSecretRef(entry);
    if (ref === undefined) {
      throw fail(
        `installEnv[${index}] must be '<environment>:<secret name>', got ${describeValue(entry)}`,
        "e.g. installEnv: ['production:NPM_TOKEN'] (the secret NPM_TOKEN of the environment production)",
      );
    }
    if (!ENV_VAR_NAME.test(ref.name)) {
      throw fail(
        `installEnv[${index}]: '${ref.name}' is not an environment variable name (letters, digits and _, not starting with a digit)`,
        'name a secret whose name can be an env var, e.g. NPM_TOKEN',
      );
    }
    const earlier = firstOfName.get(ref.name);
    if (earlier !== undefined) {
      throw fail(
        `installEnv[${index}] sets ${ref.name} again (installEnv[${earlier}] sets it)`,
        'list each secret name once',
      );
    }
    firstOfName.set(ref.name, index);
  });
  return entries.length > 0 ? entries : undefined;
}
