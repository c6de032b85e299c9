import { randomBytes } from 'node:crypto';
import t from 'tap';
import { Stem, defineTask, uuidv7, type Envelope } from '../../sdk/index.js';
import { redis, RedisBroker } from '../../plugins/redis/index.js';
import { signing } from '../../plugins/signing/index.js';
import { REDIS_URL, adminClient, deleteNamespace, requireRedis, testNamespace } from '../redis/redis-test-support.js';
import { waitFor } from '../helpers/wait.js';

if (await requireRedis(t)) {
  t.test('an envelope pushed straight into the Redis stream, unsigned or forged, is never executed', async (t) => {
    const namespace = testNamespace('signing');
    t.teardown(() => deleteNamespace(namespace));
    const keys = { k1: randomBytes(32).toString('base64') };
    const ran: string[] = [];
    const transfer = defineTask({ name: 'bank.transfer', handler: async (args: { to: string }) => void ran.push(args.to) });
    const stem = await Stem.create({ plugins: [redis({ url: REDIS_URL, namespace, blockMs: 500 }), signing({ keys })], tasks: [transfer] });
    t.teardown(() => stem.close());
    await stem.worker().start();

    const forged = (to: string, headers: Record<string, string> = {}): Envelope => ({
      id: uuidv7(),
      name: 'bank.transfer',
      args: { to },
      headers,
      queue: 'default',
      priority: 5,
      attempt: 0,
      maxRetries: 0,
      visibilityTimeoutMs: 30_000,
      createdAt: Date.now(),
      meta: {},
    });
    // 1. XADD by hand into the queue's stream, the way an attacker with Redis access would.
    const admin = await adminClient();
    t.teardown(() => admin.disconnect());
    const byHand = forged('mallory-xadd', { 'stem-signature': `hmac-sha256:k1:${randomBytes(32).toString('base64')}` });
    await admin.xadd((stem.broker as RedisBroker).keys('default').stream('5'), '*', 'v', '30000', 'e', JSON.stringify(byHand));
    // 2. A RedisBroker without the signing plugin: a producer that does not sign.
    const plain = await RedisBroker.connect(REDIS_URL, { namespace });
    t.teardown(() => plain.close());
    const unsigned = forged('mallory-unsigned');
    await plain.publish([unsigned]);
    // 3. A real signed task, to show the worker runs what is genuine.
    const genuine = await stem.enqueue(transfer, { to: 'alice' });
    await genuine.result({ timeoutMs: 60_000 });
    await waitFor(async () => (await stem.broker.listDeadLetters('default')).total === 2, 'two dead letters');

    t.same(ran, ['alice'], 'only the signed task ran');
    const letters = (await stem.broker.listDeadLetters('default')).entries;
    t.same(
      letters.map((letter) => [letter.id, letter.reason]).sort(),
      [
        [byHand.id, 'signature-invalid'],
        [unsigned.id, 'signature-invalid'],
      ].sort(),
    );
    t.match(letters.find((letter) => letter.id === byHand.id)!.meta, { signature: 'mismatch', keyId: 'k1' });
    t.match(letters.find((letter) => letter.id === unsigned.id)!.meta, { signature: 'missing' });
    await stem.broker.replayDeadLetters('default');
    await new Promise((resolve) => setTimeout(resolve, 300));
    await waitFor(async () => (await stem.broker.listDeadLetters('default')).total === 2, 'replayed forgeries dead-lettered again');
    t.same(ran, ['alice'], 'a replayed forgery is refused again');
  });
}
