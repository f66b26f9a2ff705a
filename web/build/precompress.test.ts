import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { brotliDecompressSync, gunzipSync } from "node:zlib";
import { afterEach, describe, expect, it } from "vitest";
import { gzip, precompressFile, variantsOf } from "./precompress";

const TEXT = Buffer.from("function hello(){return 'hello, kefu';}\n".repeat(200));

describe("variantsOf", () => {
  it("compresses text with brotli and gzip, both decoding to the original", () => {
    const v = variantsOf("assets/chat-abc.js", TEXT);
    expect([...v.keys()]).toEqual([".br", ".gz"]);
    expect(brotliDecompressSync(v.get(".br")!).equals(TEXT)).toBe(true);
    expect(gunzipSync(v.get(".gz")!).equals(TEXT)).toBe(true);
    expect(v.get(".br")!.length).toBeLessThan(v.get(".gz")!.length);
  });

  it("keeps only what is smaller than the original", () => {
    expect(variantsOf("robots.txt", Buffer.from("x")).size).toBe(0);
  });

  it("leaves other kinds of files alone", () => {
    expect(variantsOf("logo.png", TEXT).size).toBe(0);
    expect(variantsOf("chat.js.br", TEXT).size).toBe(0);
  });

  it("gives the same bytes every time", () => {
    const a = variantsOf("index.html", TEXT);
    const b = variantsOf("index.html", Buffer.from(TEXT));
    expect(a.get(".br")!.equals(b.get(".br")!)).toBe(true);
    expect(a.get(".gz")!.equals(b.get(".gz")!)).toBe(true);
  });
});

describe("gzip", () => {
  it("writes no time, no name and a fixed OS byte in its header", () => {
    const gz = gzip(TEXT);
    expect([...gz.subarray(0, 4)]).toEqual([0x1f, 0x8b, 8, 0]); // magic, deflate, no flags (no name)
    expect(gz.readUInt32LE(4)).toBe(0);
    expect(gz[9]).toBe(255);
  });
});

describe("precompressFile", () => {
  let dir = "";
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("writes the variants beside the file and removes those no longer worth it", async () => {
    dir = await mkdtemp(path.join(tmpdir(), "kefu-precompress-"));
    const file = path.join(dir, "widget.js");
    await writeFile(file, TEXT);
    await precompressFile(file);
    expect(gunzipSync(await readFile(`${file}.gz`)).equals(TEXT)).toBe(true);
    expect(brotliDecompressSync(await readFile(`${file}.br`)).equals(TEXT)).toBe(true);

    await writeFile(file, "x");
    await precompressFile(file);
    await expect(stat(`${file}.gz`)).rejects.toThrow();
    await expect(stat(`${file}.br`)).rejects.toThrow();
  });
});
