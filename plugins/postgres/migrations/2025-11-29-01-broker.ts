import { sql, type Kysely, type Migration } from 'kysely';

/**
 * The broker's tables: messages (with their leases), dead letters, broadcast subscriptions and the
 * known queues. Released: never change this file; add a new dated migration instead.
 */
export function brokerTables(schema: string): Migration {
  return {
    async up(db: Kysely<any>): Promise<void> {
      const s = db.schema.withSchema(schema);
      await s
        .createTable('stem_messages')
        .addColumn('id', 'bigint', (c) => c.generatedAlwaysAsIdentity().primaryKey())
        .addColumn('namespace', 'text', (c) => c.notNull())
        .addColumn('queue', 'text', (c) => c.notNull())
        .addColumn('subscriber', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('task_id', 'text', (c) => c.notNull())
        .addColumn('priority', 'smallint', (c) => c.notNull().defaultTo(0))
        .addColumn('payload', 'text', (c) => c.notNull())
        .addColumn('visibility_ms', 'integer', (c) => c.notNull().defaultTo(30_000))
        .addColumn('not_before', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
        .addColumn('locked_until', 'timestamptz')
        .addColumn('locked_by', 'text')
        .addColumn('deliveries', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('lease', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
        .execute();
      // The claim walks this index in priority-then-age order and skips leased or delayed rows.
      await s
        .createIndex('stem_messages_claim')
        .on('stem_messages')
        .columns(['namespace', 'queue', 'subscriber', 'priority desc', 'id'])
        .execute();
      // Leased rows only: inflight counts and the idle consumer's "when is the next lease due".
      await s
        .createIndex('stem_messages_leased')
        .on('stem_messages')
        .columns(['namespace', 'queue', 'locked_until'])
        .where(sql.ref('locked_until'), 'is not', null)
        .execute();
      // Delayed rows: the idle consumer's "when is the next delayed message due".
      await s
        .createIndex('stem_messages_delayed')
        .on('stem_messages')
        .columns(['namespace', 'queue', 'not_before'])
        .where(sql.ref('locked_until'), 'is', null)
        .execute();

      await s
        .createTable('stem_dead_letters')
        .addColumn('seq', 'bigint', (c) => c.generatedAlwaysAsIdentity())
        .addColumn('namespace', 'text', (c) => c.notNull())
        .addColumn('queue', 'text', (c) => c.notNull())
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('reason', 'text', (c) => c.notNull())
        .addColumn('meta', 'json', (c) => c.notNull())
        .addColumn('envelope', 'json')
        .addColumn('dead_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
        .addPrimaryKeyConstraint('stem_dead_letters_pkey', ['namespace', 'queue', 'id'])
        .execute();
      await s.createIndex('stem_dead_letters_order').on('stem_dead_letters').columns(['namespace', 'queue', 'seq']).execute();

      await s
        .createTable('stem_subscriptions')
        .addColumn('namespace', 'text', (c) => c.notNull())
        .addColumn('queue', 'text', (c) => c.notNull())
        .addColumn('consumer_id', 'text', (c) => c.notNull())
        .addColumn('seen_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
        .addPrimaryKeyConstraint('stem_subscriptions_pkey', ['namespace', 'queue', 'consumer_id'])
        .execute();

      await s
        .createTable('stem_queues')
        .addColumn('namespace', 'text', (c) => c.notNull())
        .addColumn('queue', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('stem_queues_pkey', ['namespace', 'queue'])
        .execute();
    },
  };
}
