import { ConfigError } from '../../sdk/errors.js';
import { SigningKeyring, type SigningAlgorithm, type SigningKeyInput } from './signing-keyring.js';

/** Options of `signing()`. */
export interface SigningOptions {
  /** Every key by id: the active one signs, all of them verify (keep old keys here while rotating). */
  keys: Record<string, SigningKeyInput>;
  /**
   * The id of the key that signs new tasks (default: the only key, when there is one that can sign). Omitted with several keys:
   * verify only.
   */
  activeKey?: string;
  /** `hmac-sha256` (default: shared secrets) or `ed25519` (producers hold private keys, workers may hold only public keys). */
  algorithm?: SigningAlgorithm;
}

/** The options after validation. */
export interface ResolvedSigningOptions {
  /** The parsed keys. */
  keyring: SigningKeyring;
  /** The signing key id, if this process signs. */
  activeKey: string | undefined;
}

const ALGORITHMS: readonly SigningAlgorithm[] = ['hmac-sha256', 'ed25519'];

/** Validates the options when the factory is called; throws ConfigError naming the option. */
export function resolveSigningOptions(options: SigningOptions, where = 'signing'): ResolvedSigningOptions {
  if (typeof options !== 'object' || options === null) {
    throw new ConfigError(`${where}: options must be an object like { keys: { k1: '<base64 secret>' }, activeKey: 'k1' }`);
  }
  const algorithm = options.algorithm ?? 'hmac-sha256';
  if (!ALGORITHMS.includes(algorithm))
    throw new ConfigError(`${where}: option "algorithm" must be ${ALGORITHMS.join(' or ')}, got ${JSON.stringify(algorithm)}`);
  if (typeof options.keys !== 'object' || options.keys === null || Object.keys(options.keys).length === 0) {
    throw new ConfigError(`${where}: option "keys" must name at least one key, e.g. { keys: { k1: '<base64 secret>' } }`);
  }
  const keyring = new SigningKeyring(algorithm, options.keys, where);
  let activeKey = options.activeKey;
  if (activeKey !== undefined) {
    if (!keyring.has(activeKey))
      throw new ConfigError(`${where}: option "activeKey" is "${activeKey}", which is not among the keys (${keyring.ids.join(', ')})`);
    if (!keyring.canSign(activeKey))
      throw new ConfigError(
        `${where}: the active key "${activeKey}" is a public key and cannot sign; give its private key, or leave activeKey out to ` +
          `only verify`,
      );
  } else if (keyring.ids.length === 1 && keyring.canSign(keyring.ids[0]!)) {
    activeKey = keyring.ids[0];
  }
  return { keyring, activeKey };
}

/**
 * Signing options from `STEM_SIGNING_KEYS` (`id:base64,id:base64`), `STEM_SIGNING_ACTIVE_KEY` and
 * `STEM_SIGNING_ALGORITHM`; undefined when STEM_SIGNING_KEYS is unset. Errors name the variable.
 */
export function signingOptionsFromEnv(env: NodeJS.ProcessEnv): SigningOptions | undefined {
  const list = env.STEM_SIGNING_KEYS;
  if (list === undefined || list.trim() === '') return undefined;
  const keys: Record<string, string> = {};
  for (const item of list
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '')) {
    const colon = item.indexOf(':');
    const id = item.slice(0, colon).trim();
    if (colon <= 0 || item.slice(colon + 1).trim() === '') {
      throw new ConfigError(
        `STEM_SIGNING_KEYS: "${id || item.slice(0, 8)}…" must be <key id>:<base64 key>, entries separated by commas (e.g. ` +
          `k2:AbC…=,k1:XyZ…=)`,
      );
    }
    if (id in keys) throw new ConfigError(`STEM_SIGNING_KEYS: key id "${id}" is listed twice`);
    keys[id] = item.slice(colon + 1).trim();
  }
  const options: SigningOptions = { keys };
  const active = env.STEM_SIGNING_ACTIVE_KEY?.trim();
  if (active) options.activeKey = active;
  const algorithm = env.STEM_SIGNING_ALGORITHM?.trim();
  if (algorithm) options.algorithm = algorithm as SigningAlgorithm;
  try {
    resolveSigningOptions(options, 'STEM_SIGNING_KEYS');
  } catch (error) {
    if (error instanceof ConfigError && /activeKey/.test(error.message))
      throw new ConfigError(error.message.replace('option "activeKey"', 'STEM_SIGNING_ACTIVE_KEY'));
    throw error;
  }
  return options;
}
