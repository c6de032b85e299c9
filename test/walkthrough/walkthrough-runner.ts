// Runs docs/getting-started/developer-environment.md as a reader would: every bash block of the
// page, in order, each command in its own process through bash (the "terminals"), and each
// ```text block compared with what the command (or the named running process) printed. The test
// changes nothing on the page but the Redis db indexes, the Postgres database and the control
// namespace, so that it can share the servers with other tests.
//
// What the page may say to the test, in an HTML comment right above a block:
//   <!-- walkthrough: skip: why -->              a bash block the test does not run (docker)
//   <!-- walkthrough: alternative: what -->      a bash block run only by the variant that takes it
//   <!-- walkthrough: output of "TEXT" -->       the ```text block is output of the running process whose command contains TEXT
//   <!-- walkthrough: interrupt "TEXT" -->       Ctrl-C to that process; the ```text block is what it prints as it exits
// In a ```text block, `<name>` matches one word that differs from run to run; a `<name>` that also
// appears in a command (`<chord id>`) takes the value printed first, and the command gets it.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';
import type { Test } from 'tap';
import { directive, readMarkdownBlocks, type MarkdownBlock } from '../helpers/markdown-blocks.js';
import { repoRoot } from '../helpers/run-stem.js';
import { waitFor } from '../helpers/wait.js';
import { testUrl as POSTGRES_URL } from '../postgres/postgres-harness.js';
import { REDIS_URL } from '../redis/redis-test-support.js';

/** The page this runner follows. */
export const WALKTHROUGH_PAGE = 'docs/getting-started/developer-environment.md';

/** One way through the page. */
export interface WalkthroughVariant {
  /** Run the blocks marked `walkthrough: alternative` (the Postgres result backend). */
  alternatives: boolean;
  /** The test Redis dbs standing for the page's db 0, 1 and 2 (flushed before and after). */
  redisDbs: readonly [number, number, number];
}

interface Terminal {
  command: string;
  child: ChildProcess;
  output: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  background: boolean;
}

const PLACEHOLDER = /<([a-z][a-z ]*)>/g;
const LOCAL_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/** The page's Redis URL on the test server: db N of the page becomes `dbs[N]`; host kept when the test Redis is the local default. */
export function mapRedisUrl(pageUrl: string, dbs: readonly number[], testUrl = REDIS_URL): string {
  const page = new URL(pageUrl);
  const test = new URL(testUrl);
  const db = Number(page.pathname.replace('/', '') || '0');
  const mapped = LOCAL_HOSTS.has(test.hostname) && test.port === (page.port || '6379') && LOCAL_HOSTS.has(page.hostname) ? page : test;
  const out = new URL(mapped.toString());
  out.pathname = `/${dbs[db] ?? db}`;
  out.search = page.search;
  return out.toString();
}

/** The page's Postgres URL on the test server, with `database` in place of the page's. */
export function mapPostgresUrl(pageUrl: string, database: string, testUrl = POSTGRES_URL): string {
  const page = new URL(pageUrl);
  const test = new URL(testUrl);
  const out =
    LOCAL_HOSTS.has(test.hostname) && LOCAL_HOSTS.has(page.hostname) && (test.port || '5432') === (page.port || '5432') ? page : test;
  const mapped = new URL(out.toString());
  mapped.pathname = `/${database}`;
  return mapped.toString();
}

/** The commands of a bash block: continuation lines joined, blank and comment lines dropped. */
export function commandsOf(code: string): string[] {
  const commands: string[] = [];
  let current = '';
  for (const line of code.split('\n')) {
    current += current === '' ? line : `\n${line}`;
    if (line.endsWith('\\')) continue;
    if (current.trim() !== '' && !current.trim().startsWith('#')) commands.push(current.trim());
    current = '';
  }
  return commands;
}

/**
 * Whether `expected` (a ```text block) appears in `actual`: each of its lines, in order, matches
 * a whole line of the output (runs of spaces match any run of spaces). Placeholders named in
 * `variables` are bound in `bindings` on their first match and must repeat that value after.
 */
export function matchOutput(
  expected: string,
  actual: string,
  variables: ReadonlySet<string>,
  bindings: Map<string, string>,
): { ok: true } | { ok: false; missing: string } {
  const lines = actual.split('\n').map((l) => l.trim());
  const found = new Map<string, string>();
  let at = 0;
  for (const wanted of expected
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && l !== '…')) {
    const names: string[] = [];
    let source = '';
    let last = 0;
    for (const match of wanted.matchAll(PLACEHOLDER)) {
      source += literal(wanted.slice(last, match.index));
      const name = match[1]!;
      const known = bindings.get(name) ?? found.get(name);
      if (known !== undefined && variables.has(name)) source += literal(known);
      else {
        source += '(\\S+)';
        names.push(name);
      }
      last = match.index + match[0].length;
    }
    const pattern = new RegExp(`^${source}${literal(wanted.slice(last))}$`);
    let hit: RegExpExecArray | null = null;
    while (at < lines.length && !(hit = pattern.exec(lines[at]!))) at++;
    if (!hit) return { ok: false, missing: wanted };
    names.forEach((name, i) => {
      if (variables.has(name) && !found.has(name)) found.set(name, hit![i + 1]!);
    });
    at++;
  }
  for (const [name, value] of found) if (!bindings.has(name)) bindings.set(name, value);
  return { ok: true };
}

function literal(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/\s+/g, '\\s+');
}

/** A quoted argument of a directive: `output of "stem worker start"` → `stem worker start`. */
function quoted(value: string): string {
  const match = /"([^"]+)"/.exec(value);
  if (!match) throw new Error(`the walkthrough directive "${value}" names no process in double quotes`);
  return match[1]!;
}

function isBackground(command: string): boolean {
  return /^npx stem (worker|beat) start\b/.test(command) || /^npx tsx \S*run-worker\.ts\b/.test(command);
}

/** Follows the page in `variant`; every check is an assertion on `t`. */
export async function runWalkthrough(t: Test, variant: WalkthroughVariant): Promise<void> {
  const blocks = readMarkdownBlocks(`${repoRoot}/${WALKTHROUGH_PAGE}`, WALKTHROUGH_PAGE);
  const variables = new Set<string>();
  for (const block of blocks.filter((b) => b.lang === 'bash')) for (const m of block.code.matchAll(PLACEHOLDER)) variables.add(m[1]!);
  const bindings = new Map<string, string>();
  const database = `stem_walk_${randomBytes(4).toString('hex')}`;
  const namespace = `stemtest-walk-${randomBytes(4).toString('hex')}`;
  const terminals: Terminal[] = [];

  const flushDbs = async (): Promise<void> => {
    for (const db of variant.redisDbs) {
      const client = new Redis(mapRedisUrl('redis://localhost:6379', [db]), { lazyConnect: true, maxRetriesPerRequest: 1 });
      await client.connect();
      await client.flushdb();
      client.disconnect();
    }
  };
  const admin = async <T>(use: (client: pg.Client) => Promise<T>): Promise<T> => {
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    await client.connect();
    try {
      return await use(client);
    } finally {
      await client.end();
    }
  };
  await flushDbs();
  if (variant.alternatives) await admin((c) => c.query(`CREATE DATABASE ${database}`));
  t.teardown(async () => {
    for (const terminal of terminals) if (terminal.child.exitCode === null && terminal.child.signalCode === null) kill(terminal, 'SIGKILL');
    await Promise.all(terminals.map((terminal) => terminal.exit));
    await flushDbs();
    if (variant.alternatives) await admin((c) => c.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`));
  });

  // The environment of the page's `export` lines, on top of the test's own minus its STEM_* settings.
  // tap's own variables go too: a reader's terminal has none, and tap's coverage of every child
  // process would only slow the run down.
  const env: NodeJS.ProcessEnv = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !/^(STEM_|TAP|_TAPJS_|NODE_OPTIONS$)/.test(key)),
  );
  env.NO_COLOR = '1';
  const exportLine = (command: string): void => {
    for (const assignment of command.replace(/^export\s+/, '').split(/\s+/)) {
      const [name, ...rest] = assignment.split('=');
      const value = rest.join('=').replace(/^(['"])(.*)\1$/, '$2');
      if (name === 'STEM_CONTROL_NAMESPACE') env[name] = namespace;
      else if (/^rediss?:\/\//.test(value)) env[name!] = mapRedisUrl(value, variant.redisDbs);
      else if (/^postgres(ql)?:\/\//.test(value)) env[name!] = mapPostgresUrl(value, database);
      else env[name!] = value;
    }
  };
  // What the page shows as output, with its URLs mapped as the exports were.
  const expectedText = (text: string): string => text.replace(/rediss?:\/\/[^\s"',)]+/g, (url) => mapRedisUrl(url, variant.redisDbs));

  const open = (command: string, background: boolean): Terminal => {
    const withValues = command.replace(PLACEHOLDER, (whole, name: string) => {
      const value = bindings.get(name);
      if (value === undefined) throw new Error(`"${command}" uses ${whole}, which no output shown before it provides`);
      return value;
    });
    // Its own process group, as a terminal's job: Ctrl-C reaches npx and the process it runs.
    const child = spawn('bash', ['-c', withValues], { cwd: repoRoot, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout!.on('data', (chunk) => (output += chunk));
    child.stderr!.on('data', (chunk) => (output += chunk));
    const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on('exit', (code, signal) => resolve({ code, signal })),
    );
    const terminal = { command, child, output: () => output, exit, background };
    terminals.push(terminal);
    return terminal;
  };
  const running = (text: string): Terminal => {
    const found = terminals.find(
      (terminal) =>
        terminal.background && terminal.command.includes(text) && terminal.child.exitCode === null && terminal.child.signalCode === null,
    );
    if (!found) throw new Error(`no running process started by a command containing "${text}"`);
    return found;
  };
  const checkOutput = async (terminal: Terminal, block: MarkdownBlock, waitMs: number): Promise<void> => {
    const expected = expectedText(block.code);
    let result = matchOutput(expected, terminal.output(), variables, bindings);
    if (!result.ok && waitMs > 0) {
      await waitFor(
        () => (result = matchOutput(expected, terminal.output(), variables, bindings)).ok || terminal.child.exitCode !== null,
        `"${terminal.command}" to print ${WALKTHROUGH_PAGE}:${block.line}`,
        waitMs,
      ).catch(() => undefined);
    }
    t.ok(
      result.ok,
      `${WALKTHROUGH_PAGE}:${block.line}: "${firstLine(terminal.command)}" prints what the page shows`,
      result.ok ? {} : { missing: result.missing, output: terminal.output() },
    );
  };

  let last: Terminal | undefined;
  let awaitingReady: Terminal | undefined;
  for (const block of blocks) {
    const said = directive(block, 'walkthrough')?.value ?? '';
    if (block.lang === 'bash') {
      if (awaitingReady)
        t.fail(`"${firstLine(awaitingReady.command)}" keeps running, and the page shows no output that tells when it is ready`);
      awaitingReady = undefined;
      if (said.startsWith('skip')) {
        t.comment(`not run: ${WALKTHROUGH_PAGE}:${block.line} (${said})`);
        continue;
      }
      if (said.startsWith('alternative') && !variant.alternatives) continue;
      for (const command of commandsOf(block.code)) {
        if (/^export\s/.test(command)) {
          exportLine(command);
          continue;
        }
        if (!/^npx (stem|tsx) /.test(command)) {
          t.fail(
            `${WALKTHROUGH_PAGE}:${block.line}: the walkthrough test runs npx stem, npx tsx and export lines; it does not know "${command}"`,
          );
          continue;
        }
        const background = isBackground(command);
        const terminal = open(command, background);
        last = terminal;
        if (background) {
          awaitingReady = terminal;
          continue;
        }
        const ended = await within(terminal.exit, 120_000);
        if (ended === null) kill(terminal, 'SIGKILL');
        t.equal(
          ended?.code,
          0,
          `${WALKTHROUGH_PAGE}:${block.line}: "${firstLine(command)}" exits 0`,
          ended?.code === 0 ? {} : { output: terminal.output() },
        );
      }
    } else if (block.lang === 'text') {
      if (said.startsWith('interrupt')) {
        const terminal = running(quoted(said));
        kill(terminal, 'SIGINT');
        const ended = await terminal.exit;
        // npx passes the worker's clean exit on as "ended by SIGINT", as a shell shows it.
        t.ok(
          ended.code === 0 || ended.signal === 'SIGINT' || ended.code === 130,
          `"${firstLine(terminal.command)}" exits on Ctrl-C`,
          ended,
        );
        await checkOutput(terminal, block, 0);
      } else if (said.startsWith('output of')) {
        await checkOutput(running(quoted(said)), block, 90_000);
      } else {
        if (!last) throw new Error(`${WALKTHROUGH_PAGE}:${block.line}: output shown before any command`);
        await checkOutput(last, block, last.background ? 90_000 : 0);
        if (last === awaitingReady) awaitingReady = undefined;
      }
    }
  }

  // The reader closes the terminals: Ctrl-C in each one still running.
  for (const terminal of terminals.filter((x) => x.child.exitCode === null && x.child.signalCode === null)) {
    kill(terminal, 'SIGINT');
    const ended = await within(terminal.exit, 60_000);
    t.ok(
      ended !== null && (ended.code === 0 || ended.signal === 'SIGINT' || ended.code === 130),
      `"${firstLine(terminal.command)}" stops on Ctrl-C`,
      { ended, output: terminal.output().slice(-2000) },
    );
  }
}

/** What `promise` resolves to, or null after `ms` (the timer does not outlive the answer). */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<null>((resolve) => (timer = setTimeout(resolve, ms, null)))]);
  } finally {
    clearTimeout(timer);
  }
}

function kill(terminal: Terminal, signal: NodeJS.Signals): void {
  try {
    process.kill(-terminal.child.pid!, signal);
  } catch {
    // Already gone.
  }
}

function firstLine(command: string): string {
  return command.split('\n')[0]!.replace(/\s*\\$/, '');
}
