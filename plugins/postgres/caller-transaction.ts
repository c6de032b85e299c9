import { CompiledQuery } from 'kysely';
import { InvalidTransactionError } from '../../sdk/errors.js';

/** A compiled statement: its SQL text and parameters. */
export interface StatementText {
  sql: string;
  parameters: readonly unknown[];
}

/** Runs one compiled statement on the caller's transaction. */
export type TransactionRunner = (statement: StatementText) => Promise<void>;

/** The shape of a Kysely instance, duck-typed so that another copy of kysely (another version) still works. */
interface KyselyLike {
  readonly isTransaction: boolean;
  executeQuery(query: CompiledQuery): Promise<unknown>;
}

/** The shape of a pg `Client` or `PoolClient`. */
interface PgClientLike {
  query(config: { text: string; values: unknown[] }): Promise<unknown>;
  getTransactionStatus?(): string | null;
  readyForQuery?: boolean;
}

/** Why a failed transaction (an earlier statement of it failed) cannot take the task. */
const FAILED_TRANSACTION = 'it is a failed transaction (an earlier statement failed, so Postgres ignores the rest); roll it back';

const WHAT = 'pass a Kysely transaction (the trx of db.transaction().execute(async (trx) => …)) or a pg client after BEGIN';

/**
 * Recognises what `enqueue(…, { transaction })` was given and returns how to run a statement in
 * it: a Kysely transaction (`isTransaction`), or a pg client (`Client`, `PoolClient`) inside a
 * transaction block. Anything else, or something that would commit on its own (a Kysely instance,
 * a pool, a client outside BEGIN), is an InvalidTransactionError naming what to pass instead; so is
 * a transaction on a database without the plugin's tables in `schema` (another database).
 */
export function callerTransaction(transaction: unknown, who: string, schema: string): TransactionRunner {
  const runner = recognise(transaction, who);
  return async (statement) => {
    try {
      await runner(statement);
    } catch (error) {
      const code = (error as { code?: unknown })?.code;
      // 25P02: an earlier statement failed. The pg client's own status is known only once its
      // ReadyForQuery came, which is after the failed query's promise rejected: told here instead.
      if (code === '25P02') throw new InvalidTransactionError(who, FAILED_TRANSACTION, { cause: error });
      // 3F000: no such schema; 42P01: no such table.
      if (code !== '3F000' && code !== '42P01') throw error;
      throw new InvalidTransactionError(
        who,
        `its database has no "${schema}".stem_messages table (${(error as Error).message}): open the transaction on the database ` +
          `of the postgres plugin's url, after its migrations ran; Postgres has aborted this transaction, roll it back`,
        { cause: error },
      );
    }
  };
}

function recognise(transaction: unknown, who: string): TransactionRunner {
  if (typeof transaction !== 'object' || transaction === null) {
    throw new InvalidTransactionError(who, `got ${transaction === null ? 'null' : typeof transaction}; ${WHAT}`);
  }
  const candidate = transaction as Partial<KyselyLike & PgClientLike> & { totalCount?: unknown; connect?: unknown };
  if (typeof candidate.executeQuery === 'function' && typeof candidate.isTransaction === 'boolean') {
    if (!candidate.isTransaction) {
      throw new InvalidTransactionError(
        who,
        'got a Kysely instance, not a transaction: the task would commit on its own; pass the trx of ' +
          'db.transaction().execute(async (trx) => …) (or of db.startTransaction())',
      );
    }
    const kysely = candidate as KyselyLike;
    return async (statement) => {
      await kysely.executeQuery(CompiledQuery.raw(statement.sql, [...statement.parameters]));
    };
  }
  if (typeof candidate.query === 'function') {
    if (typeof candidate.totalCount === 'number' && typeof candidate.connect === 'function') {
      throw new InvalidTransactionError(
        who,
        'got a pg Pool: each of its queries may run on another connection, outside your transaction; pass the client of `const ' +
          'client = await pool.connect(); await client.query("BEGIN")`',
      );
    }
    const client = candidate as PgClientLike;
    return async (statement) => {
      // Checked only while the client is idle: with a query of the caller's still running, its status is not known yet.
      const status = client.readyForQuery === true ? client.getTransactionStatus?.() : undefined;
      if (status === 'I') {
        throw new InvalidTransactionError(
          who,
          'the pg client is not inside a transaction (the task would commit on its own); run `await client.query("BEGIN")` first',
        );
      }
      if (status === 'E') {
        throw new InvalidTransactionError(who, FAILED_TRANSACTION);
      }
      await client.query({ text: statement.sql, values: [...statement.parameters] });
    };
  }
  throw new InvalidTransactionError(who, `got an object that is neither a Kysely transaction nor a pg client; ${WHAT}`);
}
