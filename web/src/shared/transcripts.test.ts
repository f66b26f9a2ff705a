import { describe, expect, it } from "vitest";
import { transcriptFilename, transcriptPath } from "./transcripts";

describe("transcriptPath", () => {
  it("asks for the text download or the JSON", () => {
    expect(transcriptPath("41", "text")).toBe("/api/conversations/41/transcript?format=text");
    expect(transcriptPath("41", "json")).toBe("/api/conversations/41/transcript");
  });
  it("keeps an id in its path segment", () => {
    expect(transcriptPath("4/../1", "json")).toBe("/api/conversations/4%2F..%2F1/transcript");
  });
});

describe("transcriptFilename", () => {
  it("names the file after the conversation", () => {
    expect(transcriptFilename("41", "text")).toBe("conversation-41.txt");
    expect(transcriptFilename("41", "json")).toBe("conversation-41.json");
  });
  it("takes the server's suggestion when it is a plain name of the right kind", () => {
    expect(transcriptFilename("41", "text", "conversation-41.txt")).toBe("conversation-41.txt");
    expect(transcriptFilename("41", "text", " shop_41.TXT ")).toBe("shop_41.TXT");
  });
  it("refuses a suggestion with a path, a hidden name or another kind of file", () => {
    expect(transcriptFilename("41", "text", "../etc/passwd.txt")).toBe("conversation-41.txt");
    expect(transcriptFilename("41", "text", ".txt")).toBe("conversation-41.txt");
    expect(transcriptFilename("41", "json", "conversation-41.txt")).toBe("conversation-41.json");
    expect(transcriptFilename("41", "text", "run.exe")).toBe("conversation-41.txt");
  });
});
