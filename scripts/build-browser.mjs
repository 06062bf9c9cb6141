// Bundles the browser build of petrel/client (dist/browser/client.js, the `browser` condition of
// the "./client" export) from the compiled client: one ESM file with no imports. Node modules are
// replaced by small shims (node:buffer, node:events, node:crypto in src/shims/) and the Node
// dialers by transport/dial-browser.js (the WHATWG WebSocket). Any other Node module or package
// reached from the entry fails the build, so nothing Node-only can slip into the bundle.
//
//   node scripts/build-browser.mjs [compiled src dir (default dist)] [out dir (default dist/browser)]
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** A Vite plugin: the shims in place of Node modules, and a build error for anything else Node-only. */
export function browserShims(from) {
  const shims = {
    'node:buffer': join(from, 'shims/buffer.js'),
    'node:events': join(from, 'shims/events.js'),
    'node:crypto': join(from, 'shims/crypto.js'),
  };
  const nodeDial = join(from, 'transport/dial.js');
  return {
    name: 'petrel-browser-shims',
    enforce: 'pre',
    resolveId(source, importer) {
      const shim = shims[source];
      if (shim !== undefined) return shim;
      if (importer === undefined) return null;
      if (source.startsWith('.') || isAbsolute(source)) {
        if (resolve(dirname(importer), source) === nodeDial) return join(from, 'transport/dial-browser.js');
        return null;
      }
      this.error(`${source} (imported by ${importer}) has no place in the browser build of petrel/client`);
    },
  };
}

/** Builds `<outDir>/client.js` from `<from>/client/browser.js`; resolves with the output file. */
export async function buildBrowserClient({ from = join(root, 'dist'), outDir = join(root, 'dist/browser') } = {}) {
  const { build } = await import('vite');
  await build({
    configFile: false,
    root,
    logLevel: 'warn',
    plugins: [browserShims(from)],
    build: {
      lib: { entry: join(from, 'client/browser.js'), formats: ['es'], fileName: () => 'client.js' },
      outDir,
      emptyOutDir: true,
      target: 'es2022',
      minify: false,
      sourcemap: true,
      reportCompressedSize: false,
    },
  });
  return join(outDir, 'client.js');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const from = process.argv[2] === undefined ? undefined : resolve(process.argv[2]);
  const outDir = process.argv[3] === undefined ? undefined : resolve(process.argv[3]);
  const file = await buildBrowserClient({ from, outDir });
  console.log(`browser client: ${file}`);
}
