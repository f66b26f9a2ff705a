import { describe, expect, it } from "vitest";
import { detectLocale, translate } from "./i18n";

describe("detectLocale", () => {
  it("follows the browser's first language we speak", () => {
    expect(detectLocale(null, ["zh-TW", "en"])).toBe("zh-CN");
    expect(detectLocale(null, ["fr-FR", "en-GB", "zh-CN"])).toBe("en");
    expect(detectLocale(null, ["de"])).toBe("en");
  });
  it("prefers the user's stored choice", () => {
    expect(detectLocale("en", ["zh-CN"])).toBe("en");
    expect(detectLocale("zh-CN", ["en-US"])).toBe("zh-CN");
    expect(detectLocale("klingon", ["zh-CN"])).toBe("zh-CN");
  });
});

describe("translate", () => {
  it("fills in parameters", () => {
    expect(translate("en", "typing", { name: "Ann" })).toBe("Ann is typing…");
    expect(translate("zh-CN", "typing", { name: "小王" })).toBe("小王 正在输入…");
  });
  it("leaves unknown placeholders alone", () => {
    expect(translate("en", "typing")).toBe("{name} is typing…");
  });
});
