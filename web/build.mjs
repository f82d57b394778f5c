// Bundles the chat page into one self-contained file, dist/index.html (committed: the C++ build embeds it and never
// needs npm or the network). `npm run build` writes it; `npm run check` fails when the committed file is stale.
// JS and CSS are inlined, KaTeX's woff2 fonts become data: URLs (its woff/ttf fallbacks are dropped: every browser
// that runs this page reads woff2), and the page carries its own Content-Security-Policy with the script's hash, so
// nothing but the bundled script runs and nothing but the server's own API is fetched.
import * as esbuild from 'esbuild';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const check = process.argv.includes('--check');

const woff2Only = {
  name: 'katex-woff2-only',
  setup(build) {
    build.onLoad({ filter: /katex(\.min)?\.css$/ }, async (args) => {
      const css = await fs.promises.readFile(args.path, 'utf8');
      const contents = css.replace(/,\s*url\([^)]*\.(woff|ttf)\)\s*format\("(woff|truetype)"\)/g, '');
      if (/\.(woff|ttf)\)/.test(contents)) throw new Error('katex css: a woff/ttf url is left after filtering');
      return { contents, loader: 'css', resolveDir: path.dirname(args.path) };
    });
  },
};

const result = await esbuild.build({
  entryPoints: [path.join(here, 'src/main.js')],
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  charset: 'ascii',
  legalComments: 'none',
  write: false,
  outdir: path.join(here, 'out'),
  loader: { '.woff2': 'dataurl' },
  plugins: [woff2Only],
  logLevel: 'warning',
});

const out = (ext) => {
  const f = result.outputFiles.find((o) => o.path.endsWith(ext));
  if (!f) throw new Error('esbuild wrote no ' + ext);
  return f.text;
};
let js = out('.js');
let css = out('.css');
// Inline <script>/<style> end at the first "</script" / "</style"; esbuild escapes them in strings, make sure.
js = js.replace(/<\/script/gi, '<\\/script');
if (/<\/style/i.test(css)) throw new Error('css contains </style');

const hash = crypto.createHash('sha256').update(js).digest('base64');
const csp = [
  "default-src 'none'", `script-src 'sha256-${hash}'`, "style-src 'unsafe-inline'", 'font-src data:',
  'img-src data:', "connect-src 'self'", "base-uri 'none'", "form-action 'none'",
].join('; ');

const template = fs.readFileSync(path.join(here, 'src/index.html'), 'utf8');
const parts = template.split(/(<!--CSP-->|<!--STYLE-->|<!--SCRIPT-->)/);
const fill = { '<!--CSP-->': csp, '<!--STYLE-->': `<style>${css}</style>`, '<!--SCRIPT-->': `<script>${js}</script>` };
for (const k of Object.keys(fill)) if (!parts.includes(k)) throw new Error('index.html lacks ' + k);
const html = parts.map((p) => fill[p] ?? p).join('');

const dest = path.join(here, 'dist/index.html');
if (check) {
  const cur = fs.existsSync(dest) ? fs.readFileSync(dest, 'utf8') : '';
  if (cur !== html) {
    console.error('web/dist/index.html is stale: run `npm run build` in web/ and commit the result');
    process.exit(1);
  }
  console.log('web/dist/index.html is up to date');
} else {
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  fs.writeFileSync(dest, html);
  console.log(`web/dist/index.html: ${html.length} bytes (js ${js.length}, css ${css.length})`);
}
