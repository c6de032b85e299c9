import t from 'tap';
import { sqlite } from '../../plugins/sqlite/index.js';
import { taskRetryCases } from '../helpers/task-retry-cases.js';
import { tempDir } from './sqlite-harness.js';

const dir = tempDir('retry');
t.teardown(() => dir.cleanup());
t.test('stem.retry and stem.listTasks on SQLite', (t) => taskRetryCases(t, () => [sqlite({ url: dir.url() })]));
