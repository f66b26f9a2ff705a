// Precompressed copies of the built text assets: `x.br` (brotli, best quality) and `x.gz` (gzip -9)
// beside each `x` in dist/, written only where they are smaller than `x`. The server sends one in
// place of `x` when the browser accepts its encoding, so nothing is compressed per request.
//
// Deterministic: the same input gives the same bytes (the gzip header carries no time or name, and a
// fixed OS byte), so a rebuild of dist/ compares equal. The compressed bytes are those of the zlib and
// brotli that Node bundles: build dist/ with the Node version CI uses.
import { existsSync } from "node:fs";
import { readdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";
import type { Plugin, ResolvedConfig } from "vite";

/** The files worth compressing: text (and icons, which are often uncompressed bitmaps). */
export const COMPRESSIBLE = /\.(html|js|mjs|css|svg|json|txt|ico)$/i;
const TEXT = /\.(html|js|mjs|css|svg|json|txt)$/i;
export const ENCODINGS = [".br", ".gz"] as const;
export type Variant = (typeof ENCODINGS)[number];

/** gzip at level 9 with a header that says nothing of when or where: no time, no name, OS unknown. */
export function gzip(data: Uint8Array): Buffer {
  const out = gzipSync(data, { level: 9 });
  // zlib writes a zero time and no name already; the OS byte (9) is the platform zlib was built for.
  out.writeUInt32LE(0, 4);
  out[9] = 255;
  return out;
}

/** Brotli at its best quality, in its text mode for text. */
export function brotli(data: Uint8Array, text: boolean): Buffer {
  return brotliCompressSync(data, {
    params: {
      [constants.BROTLI_PARAM_QUALITY]: constants.BROTLI_MAX_QUALITY,
      [constants.BROTLI_PARAM_MODE]: text ? constants.BROTLI_MODE_TEXT : constants.BROTLI_MODE_GENERIC,
      [constants.BROTLI_PARAM_SIZE_HINT]: data.length,
    },
  });
}

/** The compressed variants of the file `name` worth keeping: only those smaller than it. */
export function variantsOf(name: string, data: Uint8Array): Map<Variant, Buffer> {
  const out = new Map<Variant, Buffer>();
  if (!COMPRESSIBLE.test(name)) return out;
  const br = brotli(data, TEXT.test(name));
  if (br.length < data.length) out.set(".br", br);
  const gz = gzip(data);
  if (gz.length < data.length) out.set(".gz", gz);
  return out;
}

/** Writes the variants of `file` (and removes any left from a build in which it was worth it). */
export async function precompressFile(file: string): Promise<Map<Variant, Buffer>> {
  const variants = variantsOf(file, await readFile(file));
  for (const ext of ENCODINGS) {
    const v = variants.get(ext);
    if (v) await writeFile(`${file}${ext}`, v);
    else if (existsSync(`${file}${ext}`)) await rm(`${file}${ext}`);
  }
  return variants;
}

async function filesUnder(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => path.relative(dir, path.join(e.parentPath, e.name)));
}

/**
 * A Vite plugin that precompresses what this build wrote: its bundle and, when it copies one, its
 * public directory. Each of the two builds (the apps, the loader) precompresses its own files.
 */
export function precompress(): Plugin {
  let config: ResolvedConfig;
  let written: string[] = [];
  return {
    name: "kefu-precompress",
    apply: "build",
    configResolved(c) {
      config = c;
    },
    writeBundle(_options, bundle) {
      written = Object.keys(bundle);
    },
    async closeBundle() {
      const outDir = path.resolve(config.root, config.build.outDir);
      const copied = config.build.copyPublicDir && config.publicDir ? await filesUnder(config.publicDir) : [];
      const names = [...new Set([...written, ...copied])].filter((n) => COMPRESSIBLE.test(n)).sort();
      let count = 0;
      for (const name of names) {
        const file = path.join(outDir, name);
        if (existsSync(file) && (await precompressFile(file)).size > 0) count++;
      }
      config.logger.info(`precompressed ${count} of ${names.length} text files (.br, .gz)`);
    },
  };
}
