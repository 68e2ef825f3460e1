// Exact decimals for the page: the API's decimal strings as BigInt counts of 1e-8 (as the
// engine keeps them: engine/core/fixed.py), so sums and ratios the page shows are exact. Money
// is displayed as the API's own strings wherever the API gives the figure; floats are used only
// to draw (charts, the gauge's needle).

export const SCALE = 100000000n;
const DECIMAL = /^([+-]?)(\d*)(?:\.(\d*))?$/;

// "123.45" -> 12345000000n. More than eight decimals (never sent by this API) are refused.
export function parse(text) {
  const m = DECIMAL.exec(String(text).trim());
  if (!m || (m[2] === "" && (m[3] === undefined || m[3] === ""))) {
    throw new RangeError(`not a decimal: ${text}`);
  }
  const frac = m[3] || "";
  if (frac.replace(/0+$/, "").length > 8) throw new RangeError(`more than 8 decimals: ${text}`);
  const units = BigInt(m[2] || "0") * SCALE + BigInt((frac + "00000000").slice(0, 8));
  return m[1] === "-" ? -units : units;
}

// 12345000000n -> "123.45" (no trailing zeros; "0" for zero), as the engine writes decimals.
export function fmt(units) {
  const neg = units < 0n;
  const u = neg ? -units : units;
  let text = (u / SCALE).toString();
  const frac = u % SCALE;
  if (frac) text += "." + frac.toString().padStart(8, "0").replace(/0+$/, "");
  return (neg ? "-" : "") + text;
}

export function add(...values) {
  return values.reduce((a, b) => a + b, 0n);
}

export function isZero(text) {
  return parse(text) === 0n;
}

// num / den as a fraction in 1e-8 units, rounded half up (the engine's margin ratio rounding:
// engine/core/risk.py RiskFigures.ratio). den must be > 0.
export function ratio(num, den) {
  if (den <= 0n) throw new RangeError("ratio of a non-positive denominator");
  const twice = 2n * num * SCALE + den;
  const q = twice / (2n * den);
  return twice < 0n && q * 2n * den !== twice ? q - 1n : q;  // floor, as Python's //
}

// A value in 1e-8 units rounded half up (away from zero) to `places` decimals, as text with
// exactly that many decimals: for display where the API gives more than a column shows.
export function fixed(units, places) {
  const step = 10n ** BigInt(8 - places);
  const neg = units < 0n;
  let u = neg ? -units : units;
  u = (u + step / 2n) / step;
  const base = 10n ** BigInt(places);
  let text = (u / base).toString();
  if (places > 0) text += "." + (u % base).toString().padStart(places, "0");
  return (neg && u !== 0n ? "-" : "") + text;
}

// A fraction in 1e-8 units (1.0 = 100 %) as a percentage with `places` decimals.
export function percent(units, places = 2) {
  return fixed(units * 100n, places);
}

// For drawing only: the value as a float (never shown as a figure).
export function toFloat(units) {
  return Number(units) / 1e8;
}

export function cmp(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}
