import t from 'tap';
import pg from 'pg';
import { Redis } from 'ioredis';
import { ConfigError } from '../../sdk/index.js';
import { redisClientOptions } from '../../plugins/redis/redis-connection.js';
import { resolveConnectionOptions } from '../../plugins/redis/redis-options.js';
import { listenerClientConfig, poolConfig } from '../../plugins/postgres/postgres-connection.js';
import { resolvePostgresOptions } from '../../plugins/postgres/postgres-options.js';

/** The options ioredis ends up with for a URL and plugin options (no connection is made). */
function ioredisOptions(options: Parameters<typeof resolveConnectionOptions>[0]): Redis['options'] {
  const client = new Redis(resolveConnectionOptions(options, 'redis').url, redisClientOptions(resolveConnectionOptions(options, 'redis')));
  client.disconnect();
  return client.options;
}

t.test('a Redis ACL user and password in the URL reach ioredis', async (t) => {
  const options = ioredisOptions({ url: 'redis://stem-worker:s3cr%40t@cache.internal:6380/2' });
  t.match(options, { username: 'stem-worker', password: 's3cr@t', host: 'cache.internal', port: 6380, db: 2 });
  t.notOk(options.tls, 'plain TCP');
});

t.test('the ACL user and password may be options instead, and not both ways at once', async (t) => {
  t.match(ioredisOptions({ url: 'redis://cache.internal:6379', username: 'stem-worker', password: 'from-a-secret-store' }), {
    username: 'stem-worker',
    password: 'from-a-secret-store',
  });
  t.throws(() => resolveConnectionOptions({ url: 'redis://:a@h', password: 'b' }, 'redis'), { message: /password is given twice/ });
});

t.test('rediss:// turns TLS on, and the tls option passes CA and servername through', async (t) => {
  t.same(ioredisOptions({ url: 'rediss://cache.internal:6380' }).tls, {}, 'rediss:// alone: TLS with the system CAs');
  const tls = {
    ca: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
    servername: 'cache.internal',
    rejectUnauthorized: true,
  };
  t.same(ioredisOptions({ url: 'rediss://cache.internal:6380', tls }).tls, tls);
  t.same(ioredisOptions({ url: 'redis://cache.internal:6380', tls: true }).tls, {}, 'tls: true on a redis:// URL');
  t.throws(() => resolveConnectionOptions({ url: 'rediss://h:6380', tls: false }, 'redis'), ConfigError);
  t.throws(() => resolveConnectionOptions({ url: 'redis://h', tls: 'yes' as never }, 'redis'), {
    message: /option "tls" must be true, false or an object/,
  });
});

/** What pg makes of the pool settings (a Client parses them without connecting). */
function pgSsl(options: Parameters<typeof resolvePostgresOptions>[0]): unknown {
  const client = new pg.Client(poolConfig(resolvePostgresOptions(options))) as pg.Client & { connectionParameters: { ssl: unknown } };
  return client.connectionParameters.ssl;
}

t.test('Postgres sslmode in the URL is passed through to pg, for the pool and the LISTEN connection', async (t) => {
  const url = 'postgres://stem:pw@db.internal:5432/app?sslmode=verify-full';
  t.same(pgSsl({ url }), {}, 'verify-full: TLS, certificate and host checked');
  t.equal(pgSsl({ url: 'postgres://db.internal/app?sslmode=disable' }), false);
  t.same(pgSsl({ url: 'postgres://db.internal/app?sslmode=no-verify' }), { rejectUnauthorized: false });
  t.same(
    pgSsl({ url: 'postgres://db.internal/app?sslmode=require&uselibpqcompat=true' }),
    { rejectUnauthorized: false },
    'libpq semantics on request',
  );
  t.equal(listenerClientConfig(resolvePostgresOptions({ url })).connectionString, url, 'the LISTEN connection uses the same URL');
});

t.test('the ssl option passes node TLS options to every connection, and is refused next to sslmode', async (t) => {
  const ssl = { ca: 'CA PEM', rejectUnauthorized: true };
  t.same(pgSsl({ url: 'postgres://db.internal/app', ssl }), ssl);
  t.same(listenerClientConfig(resolvePostgresOptions({ url: 'postgres://db.internal/app', ssl })).ssl, ssl);
  t.throws(() => resolvePostgresOptions({ url: 'postgres://db.internal/app?sslmode=require', ssl }), { message: /TLS is set twice/ });
  t.throws(() => resolvePostgresOptions({ url: 'postgres://db.internal/app?sslmode=sometimes' }), {
    message: /sslmode=sometimes is not one of disable, prefer, require, verify-ca, verify-full, no-verify/,
  });
});
