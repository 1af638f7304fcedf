// Apart from device-checks.ts so that the CLI parses --min-free without loading ssh2.

/** `/var=500M,/opt=20M` → bytes by path (K, M, G; binary). */
export function parseMinFree(text: string): Record<string, number> {
  const limits: Record<string, number> = {};
  for (const pair of text.split(',').filter(Boolean)) {
    const match = /^(\/[^=]*)=(\d+(?:\.\d+)?)([KMG])?$/i.exec(pair.trim());
    if (!match) throw new Error(`not PATH=SIZE (e.g. /var=500M): ${JSON.stringify(pair)}`);
    const unit = { K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[(match[3] ?? 'M').toUpperCase()]!;
    limits[match[1]!] = Math.round(Number(match[2]) * unit);
  }
  return limits;
}
