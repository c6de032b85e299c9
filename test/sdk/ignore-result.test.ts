import t from 'tap';
import { ignoreResultCases } from '../helpers/ignore-result-cases.js';

t.test('ignoreResult on the memory default', (t) => ignoreResultCases(t, () => []));
