/**
 * `petrel bench <scenario> [options]`: load-tests any MQTT broker (see src/bench/options.ts for
 * the flags). Progress goes to stderr, the summary to stdout (one JSON object with --json).
 *
 * Exit codes: 0 done, 1 no client could connect (or another failure), 2 usage error.
 */
import { parseBenchArgs, USAGE, UsageError } from '../bench/options.js';
import { formatSummary } from '../bench/report.js';
import { BenchRun, targetUrl } from '../bench/run.js';

export async function main(argv: string[]): Promise<number> {
  let options;
  try {
    options = parseBenchArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`petrel bench: ${err.message}\nTry 'petrel bench --help'.\n`);
    return 2;
  }
  if (options === undefined) {
    process.stdout.write(USAGE);
    return 0;
  }
  let summary;
  try {
    summary = await new BenchRun(options, process.stderr).run();
  } catch (err) {
    process.stderr.write(`petrel bench: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
  process.stdout.write(options.json ? `${JSON.stringify(summary)}\n` : formatSummary(summary));
  if (summary.clients.connected === 0) {
    const reasons = Object.entries(summary.errors).map(([k, n]) => `${k} (${n})`).join(', ');
    process.stderr.write(`petrel bench: no client could connect to ${targetUrl(options)}: ${reasons || 'no answer'}\n`);
    return 1;
  }
  return 0;
}
