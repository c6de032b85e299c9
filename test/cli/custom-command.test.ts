import t from 'tap';
import { runStem } from '../helpers/run-stem.js';

const config = ['--config', 'fixtures/custom-command.config.ts'];

t.test('a command listed in the config joins the CLI, with its help', async (t) => {
  const help = await runStem(['--help', ...config]);
  t.equal(help.code, 0, help.stderr);
  t.match(help.stdout, /stem reports backlog/);
  const own = await runStem(['reports', 'backlog', '--help', ...config]);
  t.match(own.stdout, /Show how many report tasks wait and run/);
  t.match(own.stdout, /\$ stem reports backlog --queue reports/);
  const run = await runStem(['reports', 'backlog', '--json', ...config], { env: { STEM_BROKER_URL: 'memory://' } });
  t.equal(run.code, 0, run.stderr);
  t.same(JSON.parse(run.stdout), { queue: 'reports', waiting: 0, running: 0 });
});

t.test('without that config the command does not exist', async (t) => {
  const run = await runStem(['reports', 'backlog']);
  t.equal(run.code, 64);
  t.match(run.stderr, /^stem: unknown command "reports backlog"; the commands are: beat, config, dashboard, demo, /);
});

t.test('every built-in command has --help with an example', async (t) => {
  // In-process through main(): each command also has a test that runs the real binary.
  const { main } = await import('../../cli/main.js');
  const { PassThrough } = await import('node:stream');
  const capture = async (argv: string[]): Promise<{ code: number; text: string }> => {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let text = '';
    stdout.on('data', (chunk) => (text += chunk));
    stderr.on('data', (chunk) => (text += chunk));
    const code = await main(argv, { stdin: process.stdin, stdout, stderr, env: process.env, colorDepth: 1 });
    return { code, text };
  };
  const help = await capture(['--help']);
  const commands = [...help.text.matchAll(/^\s+stem ([a-z][a-z-]*(?: [a-z][a-z-]*)?)(?= |$)/gm)].map((match) => match[1]!);
  t.ok(commands.length >= 20, `found ${commands.length} commands`);
  for (const command of new Set(commands)) {
    const usage = await capture([...command.split(' '), '--help']);
    t.equal(usage.code, 0, `${command} --help exits 0`);
    t.match(usage.text, /Examples/, `${command} --help shows examples`);
  }
});
