// Builds every page under src/pages/<name>/main.js into dist/assets/ with hashed
// names, and writes dist/manifest.json, which the server reads to write each page's
// HTML (`dispatch/http/pages.py`).  A new page is a new folder: nothing to add here.
//
//   node build.mjs            one production build (minified, source maps beside)
//   node build.mjs --watch    rebuild on change (the server re-reads the manifest)
//   node build.mjs --dev      not minified: a CPU profile names the functions
import * as esbuild from "esbuild";
import { mkdirSync, readdirSync, existsSync, rmSync, writeFileSync, renameSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(fileURLToPath(import.meta.url));
const pagesDir = join(root, "src", "pages");
const dist = join(root, "dist");
const watch = process.argv.includes("--watch");
const dev = process.argv.includes("--dev");

const entryPoints = Object.fromEntries(
  readdirSync(pagesDir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(pagesDir, d.name, "main.js")))
    .map((d) => [d.name, join(pagesDir, d.name, "main.js")]),
);

function writeManifest(metafile) {
  // { "<page>": { "js": "assets/<page>-<hash>.js", "css": [...], "preload": [...] },
  //   "files": [every file under assets/] }
  const pages = {};
  const files = [];
  for (const [out, info] of Object.entries(metafile.outputs)) {
    const rel = relative(dist, join(root, out)).split("\\").join("/");
    if (!rel.endsWith(".map")) files.push(rel);
    if (!info.entryPoint) continue;
    const page = Object.keys(entryPoints).find(
      (name) => relative(root, entryPoints[name]) === info.entryPoint,
    );
    if (!page) continue;
    const css = info.cssBundle
      ? [relative(dist, join(root, info.cssBundle)).split("\\").join("/")]
      : [];
    const preload = info.imports
      .filter((i) => i.kind === "import-statement")
      .map((i) => relative(dist, join(root, i.path)).split("\\").join("/"));
    pages[page] = { js: rel, css, preload };
  }
  const manifest = { pages, files: files.sort(), built_at: new Date().toISOString() };
  // Written then renamed: a server never reads half a manifest, and never names a file
  // that is not there yet.  Files of earlier builds go only after the new manifest is in.
  writeFileSync(join(dist, "manifest.json.tmp"), JSON.stringify(manifest, null, 1));
  renameSync(join(dist, "manifest.json.tmp"), join(dist, "manifest.json"));
  const keep = new Set(Object.keys(metafile.outputs).map((out) => relative(join(dist, "assets"), join(root, out))));
  for (const name of readdirSync(join(dist, "assets"))) {
    if (!keep.has(name)) rmSync(join(dist, "assets", name), { force: true });
  }
  return manifest;
}

const options = {
  entryPoints,
  absWorkingDir: root,
  bundle: true,
  splitting: true,
  format: "esm",
  target: ["chrome100", "firefox100", "safari15"],
  minify: !dev,
  sourcemap: "linked",
  outdir: join(dist, "assets"),
  entryNames: "[name]-[hash]",
  chunkNames: "chunk-[hash]",
  assetNames: "[name]-[hash]",
  loader: { ".png": "file", ".svg": "file", ".woff2": "file", ".mp3": "file" },
  metafile: true,
  legalComments: "linked",
  logLevel: "warning",
  plugins: [
    {
      name: "manifest",
      setup(build) {
        build.onEnd((result) => {
          if (result.errors.length === 0 && result.metafile) {
            const manifest = writeManifest(result.metafile);
            console.log(`console_web: built ${Object.keys(manifest.pages).join(", ")}`);
          }
        });
      },
    },
  ],
};

mkdirSync(join(dist, "assets"), { recursive: true });
if (watch) {
  const ctx = await esbuild.context(options);
  await ctx.watch();
  console.log("console_web: watching for changes");
} else {
  await esbuild.build(options);
}
