import { describe, expect, it } from "vitest";
import { translate } from "../../shared/i18n";
import { applyQueuePosition, queueLine, waitMinutes } from "./queue";

const say = (q: Parameters<typeof queueLine>[0]) => {
  const l = queueLine(q);
  return translate("en", l.key, l.params);
};

describe("queueLine", () => {
  it("tells the place in line and the wait in minutes", () => {
    expect(say({ position: 1, estimatedWaitSeconds: 300 })).toBe("You are number 1 in line — about 5 min");
  });
  it("tells the place alone when the server gives no estimate", () => {
    expect(say({ position: 3, estimatedWaitSeconds: null })).toBe("You are number 3 in line");
  });
  it("falls back to the general queued text when the place is unknown", () => {
    expect(queueLine(null).key).toBe("widget.queued");
    expect(queueLine({ position: null, estimatedWaitSeconds: 60 }).key).toBe("widget.queued");
    expect(queueLine({ position: 0, estimatedWaitSeconds: 60 }).key).toBe("widget.queued");
  });
  it("speaks Chinese too", () => {
    const l = queueLine({ position: 2, estimatedWaitSeconds: 90 });
    expect(translate("zh-CN", l.key, l.params)).toBe("您排在第 2 位 — 预计等待约 2 分钟");
  });
});

describe("waitMinutes", () => {
  it("rounds the wait up to whole minutes, and says at least one", () => {
    expect(waitMinutes(0)).toBe(1);
    expect(waitMinutes(59)).toBe(1);
    expect(waitMinutes(61)).toBe(2);
    expect(waitMinutes(600)).toBe(10);
  });
});

describe("applyQueuePosition", () => {
  it("takes the live position of my conversation", () => {
    const q = applyQueuePosition(
      { conversationId: "8", position: 3, estimatedWaitSeconds: 900 },
      { conversationId: "8", position: 2, estimatedWaitSeconds: 600 },
    );
    expect(q).toEqual({ conversationId: "8", position: 2, estimatedWaitSeconds: 600 });
  });
  it("starts from nothing when the first news is a live event", () => {
    expect(applyQueuePosition(null, { conversationId: "9", position: 1, estimatedWaitSeconds: 300 }).position).toBe(1);
  });
  it("ignores the position of another conversation", () => {
    const mine = { conversationId: "9", position: 1, estimatedWaitSeconds: 300 };
    expect(applyQueuePosition(mine, { conversationId: "8", position: 4, estimatedWaitSeconds: 1200 })).toBe(mine);
  });
});
