import { visible } from './terminal-text.js';

/**
 * Rows as aligned columns under upper-case headers, two spaces apart, as `podman ps` and
 * `kubectl get` print them; the last column is not padded. A cell is one line: its newlines,
 * tabs and other controls show as escapes, so a device cannot add a row or shift a column.
 */
export function formatTable(headers: readonly string[], shownRows: readonly (readonly string[])[]) {
  const rows = shownRows.map((row) => row.map((cell) => visible(cell)));
  const widths = headers.map((header, column) =>
    Math.max(header.length, ...rows.map((row) => (row[column] ?? '').length)),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].map((text) => `${text}\n`).join('');
}

/** Labels as `k=v,k=v` (what a selector would say), or `-` for none. */
export function formatLabels(labels: Readonly<Record<string, string>>): string {
  const pairs = Object.entries(labels).map(([key, value]) => `${key}=${value}`);
  return pairs.length ? pairs.join(',') : '-';
}
