// A worker killed (SIGKILL) between winning a chord's claim and firing its callback, on Postgres.
import t from 'tap';
import { requirePostgres } from '../postgres/postgres-harness.js';
import { chordCrashTests } from './chord-crash-cases.js';

if (await requirePostgres(t)) chordCrashTests(t, 'postgres');
