import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const root = fileURLToPath(new URL('..', import.meta.url));

t.test('stem.enqueue is type-checked against the task definition and result() is typed', async (t) => {
  const output = await new Promise<{ code: number; text: string }>((resolve) => {
    execFile(
      process.execPath,
      ['node_modules/typescript/bin/tsc', '-p', 'test/types/tsconfig.json'],
      { cwd: root },
      (error, stdout, stderr) => resolve({ code: error ? ((error.code as number) ?? 1) : 0, text: stdout + stderr }),
    );
  });
  t.equal(output.code, 0, output.text || 'tsc accepted the typed usages and every @ts-expect-error was an error');
});
