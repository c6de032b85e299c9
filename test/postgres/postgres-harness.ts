import pg from 'pg';

/** The database the Postgres tests use: STEM_TEST_POSTGRES_URL, or the local `test` database. */
export const testUrl = process.env.STEM_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

let reachable: Promise<string | undefined> | undefined;

/** Why the test database cannot be reached, or undefined when it can (asked once per process). */
function unreachableReason(): Promise<string | undefined> {
  reachable ??= (async () => {
    const client = new pg.Client({ connectionString: testUrl, connectionTimeoutMillis: 20_000 }); // a loaded machine can take seconds; a server that is down refuses at once
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query('SELECT 1');
      return undefined;
    } catch (error) {
      return (error as Error).message || String(error);
    } finally {
      await client.end().catch(() => undefined);
    }
  })();
  return reachable;
}

/** The part of tap's Test these helpers use. */
interface TapLike {
  fail(message: string): unknown;
  comment(...message: unknown[]): unknown;
  test(name: string, options: { skip: string }, fn: () => void): unknown;
}

/**
 * True when Postgres answers. Otherwise the file's tests cannot run: under CI (CI=true) that is a
 * failure; on a developer machine they are skipped with a loud message.
 */
export async function requirePostgres(t: TapLike): Promise<boolean> {
  const reason = await unreachableReason();
  if (reason === undefined) return true;
  const message = `Postgres is not reachable at ${testUrl} (${reason}); start it or set STEM_TEST_POSTGRES_URL`;
  if (process.env.CI === 'true') {
    t.fail(message);
  } else {
    t.comment(`\n${'!'.repeat(80)}\n!!! SKIPPING the Postgres tests: ${message}\n${'!'.repeat(80)}`);
    t.test('Postgres tests', { skip: message }, () => undefined);
  }
  return false;
}

/** A schema name of its own for one test file, so that files running in parallel never collide. */
export function uniqueSchema(label = 'test'): string {
  return `stem_${label}_${Math.random().toString(36).slice(2, 10)}`;
}

/** Runs one SQL statement on a short-lived connection. */
export async function adminQuery<R extends pg.QueryResultRow = pg.QueryResultRow>(
  text: string,
  values: unknown[] = [],
): Promise<pg.QueryResult<R>> {
  const client = new pg.Client({ connectionString: testUrl });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await client.query<R>(text, values);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Drops a test schema and everything in it. */
export async function dropSchema(schema: string): Promise<void> {
  await adminQuery(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
}
