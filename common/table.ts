/** Rows of cells as text columns, each as wide as its widest cell: the first left-aligned, the others right. */
export function alignedTable(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ').trimEnd()).join('\n');
}

/** RFC 4180 CSV: fields with a comma, quote or line break are quoted, quotes doubled; CRLF-free (\n) lines. */
export function csvText(rows: readonly (readonly string[])[]): string {
  const field = (cell: string) => (/[",\n\r]/.test(cell) ? `"${cell.replace(/"/g, '""')}"` : cell);
  return rows.map((row) => row.map(field).join(',')).join('\n') + '\n';
}
