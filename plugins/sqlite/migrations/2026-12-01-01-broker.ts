import { sql, type Kysely, type Migration } from 'kysely';

/**
 * The broker's tables: messages (with their leases), dead letters, broadcast subscriptions and the
 * known queues. Times are epoch ms (one machine, one clock). Released: never change this file; add
 * a new dated migration instead.
 */
export const brokerTables: Migration = {
  async up(db: Kysely<any>): Promise<void> {
    // AUTOINCREMENT: a row id is never reused, so a receipt `<id>:<lease>` can never name a newer message.
    await db.schema
      .createTable('stem_messages')
      .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
      .addColumn('namespace', 'text', (c) => c.notNull())
      .addColumn('queue', 'text', (c) => c.notNull())
      .addColumn('subscriber', 'text', (c) => c.notNull().defaultTo(''))
      .addColumn('task_id', 'text', (c) => c.notNull())
      .addColumn('priority', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('payload', 'text', (c) => c.notNull())
      .addColumn('visibility_ms', 'integer', (c) => c.notNull())
      .addColumn('not_before', 'integer', (c) => c.notNull())
      .addColumn('locked_until', 'integer')
      .addColumn('locked_by', 'text')
      .addColumn('deliveries', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('lease', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('created_at', 'integer', (c) => c.notNull())
      .execute();
    // The claim walks this index in priority-then-age order.
    await db.schema
      .createIndex('stem_messages_claim')
      .on('stem_messages')
      .columns(['namespace', 'queue', 'subscriber', 'priority desc', 'id'])
      .execute();
    // An idle consumer's "when is the next delayed message due" and "when does the next lease end": one seek each.
    await db.schema.createIndex('stem_messages_delayed').on('stem_messages').columns(['namespace', 'queue', 'not_before']).execute();
    await db.schema
      .createIndex('stem_messages_leased')
      .on('stem_messages')
      .columns(['namespace', 'queue', 'locked_until'])
      .where(sql.ref('locked_until'), 'is not', null)
      .execute();

    await db.schema
      .createTable('stem_dead_letters')
      .addColumn('seq', 'integer', (c) => c.primaryKey().autoIncrement())
      .addColumn('namespace', 'text', (c) => c.notNull())
      .addColumn('queue', 'text', (c) => c.notNull())
      .addColumn('id', 'text', (c) => c.notNull())
      .addColumn('reason', 'text', (c) => c.notNull())
      .addColumn('meta', 'text', (c) => c.notNull())
      .addColumn('envelope', 'text')
      .addColumn('dead_at', 'integer', (c) => c.notNull())
      .addUniqueConstraint('stem_dead_letters_id', ['namespace', 'queue', 'id'])
      .execute();
    await db.schema.createIndex('stem_dead_letters_order').on('stem_dead_letters').columns(['namespace', 'queue', 'seq']).execute();

    await db.schema
      .createTable('stem_subscriptions')
      .addColumn('namespace', 'text', (c) => c.notNull())
      .addColumn('queue', 'text', (c) => c.notNull())
      .addColumn('consumer_id', 'text', (c) => c.notNull())
      .addColumn('seen_at', 'integer', (c) => c.notNull())
      .addPrimaryKeyConstraint('stem_subscriptions_pkey', ['namespace', 'queue', 'consumer_id'])
      .execute();

    await db.schema
      .createTable('stem_queues')
      .addColumn('namespace', 'text', (c) => c.notNull())
      .addColumn('queue', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('stem_queues_pkey', ['namespace', 'queue'])
      .execute();
  },
};
