import { describe, expect, it } from "vitest";
import { draftOf, emptyDays, hoursOf, minutesOf, nextInterval, pastMidnight, timeZones, validateHours, type HoursDraft } from "./hours";

function draft(days: Partial<HoursDraft["days"]>, more: Partial<HoursDraft> = {}): HoursDraft {
  return { enabled: true, timeZone: "Asia/Shanghai", days: { ...emptyDays(), ...days }, closedDays: [], ...more };
}
const zones = ["Asia/Shanghai", "Europe/Berlin", "UTC"];

describe("minutesOf", () => {
  it("reads HH:MM, with 24:00 only as a closing time", () => {
    expect(minutesOf("09:30")).toBe(570);
    expect(minutesOf("24:00")).toBeNull();
    expect(minutesOf("24:00", true)).toBe(1440);
    expect(minutesOf("24:01", true)).toBeNull();
    expect(minutesOf("9:30")).toBeNull();
    expect(minutesOf("12:60")).toBeNull();
  });
});

describe("validateHours", () => {
  it("accepts a working week, one day in two parts", () => {
    const d = draft({ mon: [{ open: "09:00", close: "12:00" }, { open: "13:00", close: "18:00" }], sat: [{ open: "10:00", close: "24:00" }] });
    expect(validateHours(d, zones)).toEqual([]);
  });

  it("accepts an interval past midnight, and knows it is one", () => {
    const night = { open: "22:00", close: "02:00" };
    expect(pastMidnight(night)).toBe(true);
    expect(pastMidnight({ open: "10:00", close: "24:00" })).toBe(false);
    expect(validateHours(draft({ fri: [night], sat: [{ open: "09:00", close: "18:00" }] }), zones)).toEqual([]);
  });

  it("finds a past-midnight interval running into the next day's opening", () => {
    const d = draft({ fri: [{ open: "18:00", close: "02:00" }], sat: [{ open: "01:00", close: "10:00" }] });
    expect(validateHours(d, zones)).toEqual([{ field: "sat.0", code: "overlap", other: "fri.0" }]);
  });

  it("finds Sunday's night running into Monday morning (the week wraps)", () => {
    const d = draft({ mon: [{ open: "00:00", close: "08:00" }], sun: [{ open: "20:00", close: "01:00" }] });
    expect(validateHours(d, zones)).toEqual([{ field: "sun.0", code: "overlap", other: "mon.0" }]);
  });

  it("finds overlapping intervals of one day, but not ones that only touch", () => {
    expect(validateHours(draft({ tue: [{ open: "09:00", close: "13:00" }, { open: "12:00", close: "18:00" }] }), zones)).toEqual([
      { field: "tue.1", code: "overlap", other: "tue.0" },
    ]);
    expect(validateHours(draft({ tue: [{ open: "09:00", close: "13:00" }, { open: "13:00", close: "18:00" }] }), zones)).toEqual([]);
  });

  it("rejects times that are not HH:MM, an opening at 24:00, and an empty interval", () => {
    expect(validateHours(draft({ wed: [{ open: "24:00", close: "9" }] }), zones)).toEqual([
      { field: "wed.0.open", code: "open" },
      { field: "wed.0.close", code: "close" },
    ]);
    expect(validateHours(draft({ wed: [{ open: "09:00", close: "09:00" }] }), zones)).toEqual([{ field: "wed.0", code: "same" }]);
  });

  it("rejects a time zone the browser does not know", () => {
    expect(validateHours(draft({ mon: [{ open: "09:00", close: "18:00" }] }, { timeZone: "Mars/Base" }), zones)).toEqual([
      { field: "timeZone", code: "zone" },
    ]);
  });

  it("rejects closed days that are not dates, or twice the same", () => {
    const d = draft({ mon: [{ open: "09:00", close: "18:00" }] }, { closedDays: ["2026-12-25", "2026-02-30", "2026-12-25"] });
    expect(validateHours(d, zones)).toEqual([
      { field: "closedDay.1", code: "date" },
      { field: "closedDay.2", code: "duplicateDate" },
    ]);
  });

  it("asks for at least one opening when the hours are on, not when they are off", () => {
    expect(validateHours(draft({}), zones)).toEqual([{ field: "weekly", code: "noHours" }]);
    expect(validateHours(draft({}, { enabled: false }), zones)).toEqual([]);
  });
});

describe("draftOf and hoursOf", () => {
  it("round-trip the server's hours, intervals in order and closed days sorted", () => {
    const h = {
      enabled: true,
      timeZone: "Asia/Shanghai",
      weekly: [
        { day: "mon" as const, open: "13:00", close: "18:00" },
        { day: "mon" as const, open: "09:00", close: "12:00" },
        { day: "sun" as const, open: "22:00", close: "02:00" },
      ],
      closedDays: ["2027-01-01", "2026-12-25"],
    };
    const d = draftOf(h);
    expect(d.days.mon).toEqual([{ open: "09:00", close: "12:00" }, { open: "13:00", close: "18:00" }]);
    expect(hoursOf(d)).toEqual({
      enabled: true,
      timeZone: "Asia/Shanghai",
      weekly: [
        { day: "mon", open: "09:00", close: "12:00" },
        { day: "mon", open: "13:00", close: "18:00" },
        { day: "sun", open: "22:00", close: "02:00" },
      ],
      closedDays: ["2026-12-25", "2027-01-01"],
    });
  });
});

describe("timeZones and nextInterval", () => {
  it("offers the browser's zones, with UTC and the current one", () => {
    expect(timeZones("Asia/Shanghai", () => ["Europe/Berlin"])).toEqual(["Asia/Shanghai", "UTC", "Europe/Berlin"]);
    expect(timeZones("UTC", () => { throw new Error("old browser"); })).toEqual(["UTC"]);
  });
  it("proposes 09:00–18:00, or an interval after the day's last one", () => {
    expect(nextInterval([])).toEqual({ open: "09:00", close: "18:00" });
    expect(nextInterval([{ open: "09:00", close: "12:00" }])).toEqual({ open: "13:00", close: "15:00" });
    expect(nextInterval([{ open: "09:00", close: "22:00" }])).toEqual({ open: "23:00", close: "24:00" });
  });
});
