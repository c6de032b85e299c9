// How cluster and sentinel configuration is read (no server needed): options, URL forms, refusals.
import t from 'tap';
import { redis } from '../../plugins/redis/index.js';
import { resolveConnectionOptions } from '../../plugins/redis/redis-options.js';
import { hashSlot } from '../../plugins/redis/hash-slot.js';
import { pluginForUrl } from '../../cli/config/url-plugins.js';

t.test('redis+cluster:// names the seed nodes, with credentials and TLS from the URL', async (t) => {
  const resolved = resolveConnectionOptions({ url: 'rediss+cluster://app:s%40cret@10.0.0.1:7000,10.0.0.2:7001' }, 'redis');
  t.same(resolved.topology, {
    kind: 'cluster',
    nodes: [
      { host: '10.0.0.1', port: 7000 },
      { host: '10.0.0.2', port: 7001 },
    ],
    options: {},
  });
  t.equal(resolved.username, 'app');
  t.equal(resolved.password, 's@cret');
  t.same(resolved.tls, {});
});

t.test('redis+sentinel:// names the sentinels, the master and the db', async (t) => {
  const resolved = resolveConnectionOptions({ url: 'redis+sentinel://:pw@h1:26379,h2:26380/mymaster/2' }, 'redis');
  t.same(resolved.topology, {
    kind: 'sentinel',
    sentinels: [
      { host: 'h1', port: 26379 },
      { host: 'h2', port: 26380 },
    ],
    name: 'mymaster',
    db: 2,
    options: {},
  });
  t.equal(resolved.password, 'pw');
  t.equal(resolved.tls, undefined);
});

t.test('the cluster and sentinel options take ioredis options along', async (t) => {
  const cluster = resolveConnectionOptions(
    { cluster: { nodes: ['127.0.0.1:7000', { host: '127.0.0.1', port: 7001 }], scaleReads: 'master' } },
    'redis',
  );
  t.match(cluster.topology, { kind: 'cluster', nodes: [{ port: 7000 }, { port: 7001 }], options: { scaleReads: 'master' } });
  t.equal(cluster.url, 'redis+cluster://127.0.0.1:7000,127.0.0.1:7001');
  const sentinel = resolveConnectionOptions({ sentinel: { sentinels: ['127.0.0.1:26379'], name: 'm', sentinelPassword: 'x' } }, 'redis');
  t.match(sentinel.topology, { kind: 'sentinel', name: 'm', db: 0, options: { sentinelPassword: 'x' } });
});

t.test('malformed cluster and sentinel configuration is refused naming the option', async (t) => {
  t.throws(() => redis({ url: 'redis+cluster://10.0.0.1:7000/1' }), /option "url" .* has a path; use redis\+cluster:\/\//);
  t.throws(() => redis({ url: 'redis+sentinel://10.0.0.1:26379' }), /must name the master; use redis\+sentinel:\/\//);
  t.throws(() => redis({ url: 'redis+cluster://10.0.0.1' }), /option "url" holds "10.0.0.1"; give "host:port"/);
  t.throws(() => redis({ cluster: { nodes: [] } }), /option "cluster" needs nodes/);
  t.throws(() => redis({ sentinel: { sentinels: ['h:1'], name: '' } }), /option "sentinel.name"/);
  t.throws(() => redis({ url: 'redis://h:1', cluster: { nodes: ['h:1'] } }), /options "url" and "cluster" are exclusive/);
  t.throws(() => redis({ url: 'redis+cluster://:pw@h:1', password: 'pw' }), /the password is given twice/);
});

t.test('STEM_* URLs with +cluster and +sentinel schemes pick the Redis plugin', async (t) => {
  for (const url of ['redis+cluster://127.0.0.1:7000,127.0.0.1:7001?namespace=n', 'redis+sentinel://127.0.0.1:26379/mymaster']) {
    const plugin = await pluginForUrl('broker', url, 'STEM_BROKER_URL');
    t.equal(plugin?.name, 'redis-broker:broker', url);
  }
});

t.test('hashSlot follows the cluster spec: hash tags, and the spec example', async (t) => {
  t.equal(hashSlot('123456789'), 12739, 'CRC16 of the spec example');
  t.equal(hashSlot('{user1000}.following'), hashSlot('{user1000}.followers'));
  t.equal(hashSlot('foo{}{bar}'), hashSlot('foo{}{bar}'), 'an empty tag hashes the whole key');
  t.not(hashSlot('foo{}{bar}'), hashSlot('bar'));
  t.equal(hashSlot('{stem:emails}:s:9'), hashSlot('{stem:emails}:leases'));
});
