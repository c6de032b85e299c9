import { assertKnownOptions, type OptionKeys } from '../../sdk/option-keys.js';
import type { StemPlugin } from '../../sdk/plugin.js';
import { EnvelopeSigner } from './envelope-signer.js';
import { resolveSigningOptions, type SigningOptions } from './signing-options.js';

export { canonicalEnvelope, canonicalJson, SIGNATURE_HEADER } from './canonical-envelope.js';
export { SigningError, type SignatureCheck, type SignatureProblem } from './envelope-signer.js';
export { signingOptionsFromEnv, type SigningOptions } from './signing-options.js';
export type { SigningAlgorithm, SigningKeyInput } from './signing-keyring.js';

/**
 * Signs at the very end of the enqueue phase, after routing (stage 0) and telemetry (100) have
 * set the queue, priority and headers the signature covers.
 */
const SIGN_STAGE = 1_000;
/** Verifies before every other dispatch tap (revoke is at -100): a forged task gets no further. */
const VERIFY_STAGE = -1_000;

/** The keys of {@link SigningOptions}: what `signing()` accepts. */
const SIGNING_OPTION_KEYS = { keys: true, activeKey: true, algorithm: true } as const satisfies OptionKeys<SigningOptions>;

/** The dead-letter reason of a task whose signature is missing or does not verify. */
export const SIGNATURE_INVALID = 'signature-invalid';

/**
 * Signs every task this process enqueues and refuses, on its workers, every task whose signature
 * is missing or wrong: it is dead-lettered with reason `signature-invalid` and never runs.
 *
 * @example signing({ keys: { k2: process.env.NEW_KEY!, k1: process.env.OLD_KEY! }, activeKey: 'k2' })
 */
export function signing(options: SigningOptions): StemPlugin {
  assertKnownOptions('signing()', options, SIGNING_OPTION_KEYS);
  const { keyring, activeKey } = resolveSigningOptions(options);
  const signer = new EnvelopeSigner(keyring, activeKey);
  return {
    name: 'signing',
    apply(stem) {
      stem.hooks.enqueue.tap({ name: 'signing', stage: SIGN_STAGE }, (envelope) => signer.sign(envelope));
      stem.hooks.dispatch.tap({ name: 'signing', stage: VERIFY_STAGE }, (delivery) => {
        const check = signer.check(delivery.envelope);
        if (check.ok) return undefined;
        const meta: Record<string, unknown> = { signature: check.problem };
        if (check.keyId !== undefined) meta.keyId = check.keyId;
        return { action: 'reject', reason: SIGNATURE_INVALID, meta };
      });
    },
  };
}
