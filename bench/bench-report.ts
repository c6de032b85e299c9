/** One line of the results: Stem against its peer on one metric. */
export interface ResultRow {
  workload: string;
  metric: string;
  unit: string;
  stem: number;
  peer: number;
  /** Who the peer is (for workload 7: Stem with telemetry off). */
  peerName: string;
  /** Which way is better for this metric. */
  better: 'higher' | 'lower';
  /** The target on ratio = stem / peer, if any. */
  target?: { op: '>=' | '<='; value: number };
  /** Measured runs behind the median. */
  runs: number;
  /** A measurement that could not be made, and why. */
  error?: string;
}

function round(value: number): number {
  if (!Number.isFinite(value)) return value;
  const abs = Math.abs(value);
  return abs >= 100 ? Math.round(value) : abs >= 1 ? Math.round(value * 100) / 100 : Math.round(value * 1_000) / 1_000;
}

/** stem / peer, rounded. */
export function ratioOf(row: ResultRow): number {
  return Math.round((row.stem / row.peer) * 100) / 100;
}

/** Whether the row meets its target (undefined when it has none). */
export function targetMet(row: ResultRow): boolean | undefined {
  if (row.target === undefined || row.error !== undefined) return undefined;
  const ratio = row.stem / row.peer;
  return row.target.op === '>=' ? ratio >= row.target.value : ratio <= row.target.value;
}

/** The one-line JSON of a row. */
export function jsonLine(row: ResultRow): string {
  const line: Record<string, unknown> = {
    workload: row.workload,
    metric: row.metric,
    unit: row.unit,
    stem: round(row.stem),
    peer: round(row.peer),
    peerName: row.peerName,
    ratio: ratioOf(row),
    better: row.better,
    runs: row.runs,
  };
  if (row.target) {
    line.target = `${row.target.op} ${row.target.value}`;
    line.met = targetMet(row);
  }
  if (row.error) line.error = row.error;
  return JSON.stringify(line);
}

function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return '—';
  return round(value).toLocaleString('en-US');
}

/** The aligned table of all rows. */
export function table(rows: readonly ResultRow[]): string {
  const header = ['workload', 'metric', 'unit', 'Stem', 'peer', 'peer is', 'Stem/peer', 'target', 'met'];
  const body = rows.map((row) => {
    const met = targetMet(row);
    return [
      row.workload,
      row.metric,
      row.unit,
      row.error ? 'error' : formatNumber(row.stem),
      row.error ? 'error' : formatNumber(row.peer),
      row.peerName,
      row.error ? '—' : ratioOf(row).toFixed(2),
      row.target ? `${row.target.op} ${row.target.value}` : '',
      met === undefined ? '' : met ? 'yes' : 'NO',
    ];
  });
  const widths = header.map((title, column) => Math.max(title.length, ...body.map((cells) => cells[column]!.length)));
  const numeric = new Set([3, 4, 6]);
  const line = (cells: string[]): string =>
    cells
      .map((cell, column) => (numeric.has(column) ? cell.padStart(widths[column]!) : cell.padEnd(widths[column]!)))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((width) => '-'.repeat(width)).join('  '), ...body.map(line)].join('\n');
}
