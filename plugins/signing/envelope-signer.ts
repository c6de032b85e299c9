import type { Envelope } from '../../sdk/envelope.js';
import { StemError } from '../../sdk/errors.js';
import { canonicalEnvelope, SIGNATURE_HEADER } from './canonical-envelope.js';
import type { SigningKeyring } from './signing-keyring.js';

/** Why a signature did not verify (the `signature` meta of a `signature-invalid` dead letter). */
export type SignatureProblem = 'missing' | 'malformed' | 'wrong-algorithm' | 'unknown-key' | 'mismatch';

/** The result of checking an envelope's signature. */
export type SignatureCheck = { ok: true; keyId: string } | { ok: false; problem: SignatureProblem; keyId?: string };

/** An enqueue through a signing plugin that has no key to sign with. */
export class SigningError extends StemError {
  constructor(message: string) {
    super('signing', message);
  }
}

/** Signs envelopes with the active key and checks them against every key of the keyring. */
export class EnvelopeSigner {
  constructor(
    private readonly keyring: SigningKeyring,
    /** The key that signs; undefined: this process only verifies. */
    readonly activeKey: string | undefined,
  ) {}

  /** The envelope with its `stem-signature` header set (a copy; the input is not changed). */
  sign(envelope: Envelope): Envelope {
    const keyId = this.activeKey;
    if (keyId === undefined) {
      throw new SigningError(
        `task "${envelope.name}" cannot be signed: the signing plugin has no active key (it only verifies); ` +
          'set activeKey (STEM_SIGNING_ACTIVE_KEY) to a key that can sign, or workers will dead-letter the task as signature-invalid',
      );
    }
    const signature = this.keyring.sign(keyId, canonicalEnvelope(envelope));
    return { ...envelope, headers: { ...envelope.headers, [SIGNATURE_HEADER]: `${this.keyring.algorithm}:${keyId}:${signature}` } };
  }

  /** Checks the `stem-signature` header against the canonical envelope. */
  check(envelope: Envelope): SignatureCheck {
    const header = envelope.headers?.[SIGNATURE_HEADER];
    if (typeof header !== 'string' || header === '') return { ok: false, problem: 'missing' };
    const [algorithm, keyId, signature, extra] = header.split(':');
    if (algorithm === undefined || keyId === undefined || !signature || extra !== undefined) return { ok: false, problem: 'malformed' };
    // The algorithm is the worker's, never the message's: a message cannot pick a weaker check.
    if (algorithm !== this.keyring.algorithm) return { ok: false, problem: 'wrong-algorithm', keyId };
    if (!this.keyring.has(keyId)) return { ok: false, problem: 'unknown-key', keyId };
    return this.keyring.verify(keyId, canonicalEnvelope(envelope), signature)
      ? { ok: true, keyId }
      : { ok: false, problem: 'mismatch', keyId };
  }
}
