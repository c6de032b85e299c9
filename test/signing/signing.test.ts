import { generateKeyPairSync, randomBytes } from 'node:crypto';
import t, { type Test } from 'tap';
import { ConfigError, Stem, defineTask, type Envelope, type StemPlugin } from '../../sdk/index.js';
import { canonicalEnvelope, SIGNATURE_HEADER, signing, signingOptionsFromEnv, SigningError } from '../../plugins/signing/index.js';
import { loadConfig } from '../../cli/config/index.js';
import { waitFor } from '../helpers/wait.js';

const key = (): string => randomBytes(32).toString('base64');

function envelope(overrides: Partial<Envelope> = {}): Envelope {
  return {
    id: '01a0-test',
    name: 'sig.task',
    args: { b: 2, a: [1, { y: 1, x: 0 }] },
    headers: { tenant: 'acme' },
    queue: 'default',
    priority: 5,
    attempt: 0,
    maxRetries: 3,
    visibilityTimeoutMs: 30_000,
    createdAt: 1_700_000_000_000,
    meta: {},
    ...overrides,
  };
}

/** Runs a worker with `plugins` over the memory broker and returns what ran and what was dead-lettered. */
async function runOne(
  t: Test,
  producer: StemPlugin[],
  worker: StemPlugin[],
  tamper?: (envelope: Envelope) => Envelope,
): Promise<{ ran: unknown[]; reasons: string[]; meta: Array<Record<string, unknown>> }> {
  const ran: unknown[] = [];
  const task = defineTask({ name: 'sig.task', handler: async (args: unknown) => void ran.push(args) });
  const stem = await Stem.create({ tasks: [task], plugins: worker });
  t.teardown(() => stem.close());
  // The producer shares the worker's in-memory broker: a second Stem whose broker is the first one's.
  const sender = await Stem.create({
    tasks: [task],
    plugins: [{ name: 'shared-broker', apply: (s) => s.provide('broker', stem.broker) }, ...producer],
  });
  if (tamper) sender.hooks.enqueue.tap({ name: 'tamper', stage: 10_000 }, tamper);
  t.teardown(() => sender.close());
  await stem.worker().start();
  const handle = await sender.enqueue(task, { amount: 10 });
  await waitFor(
    async () => ran.length > 0 || (await stem.broker.listDeadLetters('default')).total > 0,
    'the task to run or be dead-lettered',
  );
  const letters = (await stem.broker.listDeadLetters('default')).entries;
  t.ok(handle.id);
  return { ran, reasons: letters.map((letter) => letter.reason), meta: letters.map((letter) => letter.meta) };
}

t.test('the canonical envelope sorts keys at every depth and leaves out attempt, notBefore and the signature', async (t) => {
  const base = envelope();
  const text = canonicalEnvelope(base);
  t.equal(
    text,
    '{"args":{"a":[1,{"x":0,"y":1}],"b":2},"createdAt":1700000000000,"headers":{"tenant":"acme"},"id":"01a0-test","maxRetries":3,"meta":{},"name":"sig.task","priority":5,"queue":"default","v":1,"visibilityTimeoutMs":30000}',
  );
  t.equal(
    canonicalEnvelope({ ...base, attempt: 4, notBefore: 1, headers: { ...base.headers, [SIGNATURE_HEADER]: 'x' } }),
    text,
    'retries and replays keep the signature valid',
  );
  t.equal(
    canonicalEnvelope(JSON.parse(JSON.stringify({ ...base, args: { a: [1, { x: 0, y: 1 }], b: 2, gone: undefined } }))),
    text,
    'a JSON round trip and key order change nothing',
  );
  for (const [field, value] of [
    ['args', { a: 1 }],
    ['name', 'other'],
    ['queue', 'q2'],
    ['priority', 9],
    ['maxRetries', 9],
    ['meta', { x: 1 }],
    ['headers', { tenant: 'evil' }],
    ['id', 'other'],
    ['expiresAt', 1],
  ] as const) {
    t.not(canonicalEnvelope({ ...base, [field]: value }), text, `${field} is covered`);
  }
});

t.test('a signed task runs; an unsigned, a forged and a tampered one are dead-lettered as signature-invalid and never run', async (t) => {
  const keys = { k1: key() };
  const signed = await runOne(t, [signing({ keys })], [signing({ keys })]);
  t.same(signed.ran, [{ amount: 10 }]);
  const unsigned = await runOne(t, [], [signing({ keys })]);
  t.same(unsigned.ran, [], 'the unsigned task never ran');
  t.same(unsigned.reasons, ['signature-invalid']);
  t.match(unsigned.meta[0], { signature: 'missing' });
  const forged = await runOne(t, [signing({ keys: { k1: key() } })], [signing({ keys })]);
  t.same(forged.ran, []);
  t.match(forged.meta[0], { signature: 'mismatch', keyId: 'k1' }, 'signed with another secret under the same key id');
  const tampered = await runOne(t, [signing({ keys })], [signing({ keys })], (e) => ({ ...e, args: { amount: 1_000_000 } }));
  t.same(tampered.ran, [], 'args changed after signing: never run');
  t.same(tampered.reasons, ['signature-invalid']);
  const wrongAlgorithm = await runOne(t, [signing({ keys })], [signing({ keys })], (e) => ({
    ...e,
    headers: { ...e.headers, [SIGNATURE_HEADER]: e.headers[SIGNATURE_HEADER]!.replace('hmac-sha256', 'ed25519') },
  }));
  t.match(wrongAlgorithm.meta[0], { signature: 'wrong-algorithm' });
});

t.test('key rotation: the active key signs, old keys still verify, unknown key ids are refused', async (t) => {
  const [k1, k2] = [key(), key()];
  const seen: string[] = [];
  const old = await runOne(t, [signing({ keys: { k1 } })], [signing({ keys: { k2, k1 }, activeKey: 'k2' })]);
  t.same(old.ran, [{ amount: 10 }], 'a task signed with the old key still runs');
  const rotated = await runOne(
    t,
    [
      signing({ keys: { k2, k1 }, activeKey: 'k2' }),
      { name: 'spy', apply: (s) => void s.hooks.published.tap('spy', (es) => void seen.push(es[0]!.headers[SIGNATURE_HEADER]!)) },
    ],
    [signing({ keys: { k2 } })],
  );
  t.same(rotated.ran, [{ amount: 10 }]);
  t.match(seen[0], /^hmac-sha256:k2:/, 'the active key signed');
  const retired = await runOne(t, [signing({ keys: { k1 } })], [signing({ keys: { k2 } })]);
  t.match(retired.meta[0], { signature: 'unknown-key', keyId: 'k1' }, 'a retired key no longer verifies');
});

t.test('Ed25519: producers sign with the private key, workers verify with only the public key', async (t) => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const privateDer = privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64');
  const publicPem = publicKey.export({ format: 'pem', type: 'spki' }).toString();
  const good = await runOne(
    t,
    [signing({ algorithm: 'ed25519', keys: { e1: privateDer } })],
    [signing({ algorithm: 'ed25519', keys: { e1: publicPem } })],
  );
  t.same(good.ran, [{ amount: 10 }]);
  const other = generateKeyPairSync('ed25519').privateKey;
  const forged = await runOne(
    t,
    [signing({ algorithm: 'ed25519', keys: { e1: other } })],
    [signing({ algorithm: 'ed25519', keys: { e1: publicPem } })],
  );
  t.same(forged.ran, []);
  t.match(forged.meta[0], { signature: 'mismatch' });
  const verifyOnly = await Stem.create({ plugins: [signing({ algorithm: 'ed25519', keys: { e1: publicPem } })] });
  t.teardown(() => verifyOnly.close());
  await t.rejects(
    verifyOnly.enqueue('sig.task', {}),
    SigningError,
    'a verify-only process cannot enqueue: a clear error, not a task workers would refuse',
  );
});

t.test('signing runs after routing, whatever the plugin order, so the queue it signs is the final one', async (t) => {
  const keys = { k1: key() };
  const reroute: StemPlugin = {
    name: 'reroute',
    apply: (s) => void s.hooks.enqueue.tap('reroute', (e) => ({ ...e, queue: 'default', priority: 7 })),
  };
  const result = await runOne(t, [signing({ keys }), reroute], [signing({ keys })]);
  t.same(result.ran, [{ amount: 10 }]);
});

t.test('a retried task keeps a valid signature (attempt is not signed)', async (t) => {
  const keys = { k1: key() };
  let calls = 0;
  const flaky = defineTask({
    name: 'sig.flaky',
    options: { maxRetries: 2, retryPolicy: { delayMs: 5, jitter: false } },
    handler: async () => {
      calls++;
      if (calls < 3) throw new Error('not yet');
      return 'ok';
    },
  });
  const stem = await Stem.create({ tasks: [flaky], plugins: [signing({ keys })] });
  t.teardown(() => stem.close());
  await stem.worker().start();
  t.equal(await (await stem.enqueue(flaky, {})).result({ timeoutMs: 60_000 }), 'ok');
  t.equal(calls, 3);
});

t.test('options are checked when the factory is called, with errors naming the option', async (t) => {
  t.throws(() => signing({ keys: {} }), { message: /option "keys" must name at least one key/ });
  t.throws(() => signing({ keys: { k1: 'c2hvcnQ=' } }), { message: /key "k1" is 5 bytes; an hmac-sha256 key needs at least 16/ });
  t.throws(() => signing({ keys: { k1: key() }, activeKey: 'k9' }), {
    message: /option "activeKey" is "k9", which is not among the keys \(k1\)/,
  });
  t.throws(() => signing({ keys: { 'bad:id': key() } }), ConfigError);
  t.throws(() => signing({ keys: { k1: key() }, algorithm: 'rsa' as never }), {
    message: /option "algorithm" must be hmac-sha256 or ed25519/,
  });
  t.throws(() => signing({ algorithm: 'ed25519', keys: { e1: key() } }), { message: /key "e1" is not an Ed25519 key/ });
});

t.test('STEM_SIGNING_KEYS and STEM_SIGNING_ACTIVE_KEY configure the plugin through loadConfig', async (t) => {
  const [k1, k2] = [key(), key()];
  t.same(signingOptionsFromEnv({ STEM_SIGNING_KEYS: `k2:${k2}, k1:${k1}`, STEM_SIGNING_ACTIVE_KEY: 'k2' }), {
    keys: { k2, k1 },
    activeKey: 'k2',
  });
  t.equal(signingOptionsFromEnv({}), undefined);
  t.throws(() => signingOptionsFromEnv({ STEM_SIGNING_KEYS: k1 }), { message: /STEM_SIGNING_KEYS: .* must be <key id>:<base64 key>/ });
  t.throws(() => signingOptionsFromEnv({ STEM_SIGNING_KEYS: `k1:${k1}`, STEM_SIGNING_ACTIVE_KEY: 'k3' }), {
    message: /STEM_SIGNING_ACTIVE_KEY is "k3", which is not among the keys/,
  });
  const dir = t.testdir({});
  const config = await loadConfig({ cwd: dir, env: { STEM_SIGNING_KEYS: `k2:${k2},k1:${k1}`, STEM_SIGNING_ACTIVE_KEY: 'k2' } });
  t.ok(
    config.plugins!.some((plugin) => plugin.name === 'signing'),
    'the signing plugin is added',
  );
  t.notMatch(JSON.stringify(config.plugins), k2, 'no key appears in the plugin list');
});
