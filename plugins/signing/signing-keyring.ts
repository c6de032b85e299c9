import { createHmac, createPrivateKey, createPublicKey, sign, timingSafeEqual, verify, type KeyObject } from 'node:crypto';
import { ConfigError } from '../../sdk/errors.js';

/** The signature algorithms the plugin supports. */
export type SigningAlgorithm = 'hmac-sha256' | 'ed25519';

/**
 * A key as given: for HMAC a Buffer (raw bytes) or a base64 string; for Ed25519 a KeyObject, a PEM
 * string, or a base64 string of DER (PKCS#8 private key, or SPKI public key for verify-only).
 */
export type SigningKeyInput = string | Buffer | KeyObject;

/** HMAC secrets shorter than this are refused: they can be guessed. */
export const MIN_HMAC_KEY_BYTES = 16;

interface HmacKey {
  kind: 'hmac';
  secret: Buffer;
}

interface Ed25519Key {
  kind: 'ed25519';
  publicKey: KeyObject;
  privateKey?: KeyObject;
}

type ParsedKey = HmacKey | Ed25519Key;

const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;
const BASE64 = /^[A-Za-z0-9+/_-]+={0,2}$/;

/** The keys of one signing plugin: signs with one, verifies with any, in constant time for HMAC. */
export class SigningKeyring {
  private readonly keys = new Map<string, ParsedKey>();

  /** Parses and checks every key; throws ConfigError naming the key id and what is wrong. */
  constructor(
    readonly algorithm: SigningAlgorithm,
    keys: Record<string, SigningKeyInput>,
    where: string,
  ) {
    for (const [id, input] of Object.entries(keys)) {
      if (!KEY_ID.test(id))
        throw new ConfigError(`${where}: key id ${JSON.stringify(id)} must be 1 to 64 letters, digits, dots, dashes or underscores`);
      this.keys.set(id, algorithm === 'hmac-sha256' ? parseHmacKey(id, input, where) : parseEd25519Key(id, input, where));
    }
  }

  /** The ids of every key, in the order given. */
  get ids(): string[] {
    return [...this.keys.keys()];
  }

  /** True when `id` is known. */
  has(id: string): boolean {
    return this.keys.has(id);
  }

  /** True when the key can sign (an HMAC secret or an Ed25519 private key). */
  canSign(id: string): boolean {
    const key = this.keys.get(id);
    return key !== undefined && (key.kind === 'hmac' || key.privateKey !== undefined);
  }

  /** The base64 signature of `data` with key `id` (which must be able to sign). */
  sign(id: string, data: string): string {
    const key = this.keys.get(id)!;
    if (key.kind === 'hmac') return createHmac('sha256', key.secret).update(data).digest('base64');
    return sign(null, Buffer.from(data), key.privateKey!).toString('base64');
  }

  /** True when `signature` (base64) is a valid signature of `data` by key `id`. */
  verify(id: string, data: string, signature: string): boolean {
    const key = this.keys.get(id);
    if (key === undefined) return false;
    const given = Buffer.from(signature, 'base64');
    if (key.kind === 'hmac') {
      const expected = createHmac('sha256', key.secret).update(data).digest();
      return given.length === expected.length && timingSafeEqual(given, expected);
    }
    return verify(null, Buffer.from(data), key.publicKey, given);
  }
}

function parseHmacKey(id: string, input: SigningKeyInput, where: string): HmacKey {
  let secret: Buffer;
  if (Buffer.isBuffer(input)) secret = input;
  else if (typeof input === 'string' && BASE64.test(input)) secret = Buffer.from(input, 'base64');
  else
    throw new ConfigError(
      `${where}: key "${id}" must be a Buffer or a base64 string for hmac-sha256 (e.g. from \`openssl rand -base64 32\`)`,
    );
  if (secret.length < MIN_HMAC_KEY_BYTES) {
    throw new ConfigError(
      `${where}: key "${id}" is ${secret.length} bytes; an hmac-sha256 key needs at least ${MIN_HMAC_KEY_BYTES} (32 recommended: ` +
        `\`openssl rand -base64 32\`)`,
    );
  }
  return { kind: 'hmac', secret };
}

function parseEd25519Key(id: string, input: SigningKeyInput, where: string): Ed25519Key {
  const fail = (why: string): never => {
    throw new ConfigError(
      `${where}: key "${id}" is not an Ed25519 key (${why}); give a KeyObject, a PEM string, or base64 DER ` +
        '(private: `openssl genpkey -algorithm ed25519 -outform DER | base64`; public: add `openssl pkey -pubout -outform DER`)',
    );
  };
  let key: KeyObject | undefined;
  if (typeof input === 'object' && !Buffer.isBuffer(input)) key = input;
  else if (typeof input === 'string' && input.includes('-----BEGIN')) {
    key = input.includes('PRIVATE') ? attempt(() => createPrivateKey(input)) : attempt(() => createPublicKey(input));
  } else {
    const der = Buffer.isBuffer(input)
      ? input
      : typeof input === 'string' && BASE64.test(input)
        ? Buffer.from(input, 'base64')
        : fail('not base64');
    key =
      attempt(() => createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })) ??
      attempt(() => createPublicKey({ key: der, format: 'der', type: 'spki' }));
  }
  if (key === undefined) return fail('it could not be parsed');
  if (key.asymmetricKeyType !== 'ed25519') return fail(`it is ${key.asymmetricKeyType ?? key.type}`);
  return key.type === 'private'
    ? { kind: 'ed25519', privateKey: key, publicKey: createPublicKey(key) }
    : { kind: 'ed25519', publicKey: key };
}

function attempt<T>(make: () => T): T | undefined {
  try {
    return make();
  } catch {
    return undefined;
  }
}
