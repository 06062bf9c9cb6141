// Bundles the web dashboard (dashboard/: Preact + uPlot, TypeScript with JSX) into dist/dashboard/,
// which the server serves at /dashboard/. `petrel/client` is the browser build
// (dist/browser/client.js, made by scripts/build-browser.mjs first). Everything is bundled: the
// page loads nothing from anywhere but the server. Prints the size of each file.
//
//   node scripts/build-dashboard.mjs [out dir (default dist/dashboard)]
import { readdirSync, statSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Builds the dashboard into `outDir`; resolves with the files written and their sizes (raw and gzip). */
export async function buildDashboard({ outDir = join(root, 'dist/dashboard'), client = join(root, 'dist/browser/client.js') } = {}) {
  const { build } = await import('vite');
  await build({
    configFile: false,
    root: join(root, 'dashboard'),
    base: './',
    logLevel: 'warn',
    resolve: { alias: { 'petrel/client': client } },
    esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
    build: {
      outDir,
      emptyOutDir: true,
      target: 'es2022',
      sourcemap: false,
      reportCompressedSize: false,
      chunkSizeWarningLimit: 1024,
    },
  });
  const files = [];
  const walk = (dir) => {
    for (const name of readdirSync(dir)) {
      const full = join(dir, name);
      if (statSync(full).isDirectory()) walk(full);
      else files.push({ file: relative(outDir, full), bytes: statSync(full).size, gzip: gzipSync(readFileSync(full)).length });
    }
  };
  walk(outDir);
  return files;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const outDir = process.argv[2] === undefined ? undefined : resolve(process.argv[2]);
  const files = await buildDashboard({ outDir });
  for (const f of files) console.log(`dashboard: ${f.file} ${f.bytes} bytes (${f.gzip} gzip)`);
}
