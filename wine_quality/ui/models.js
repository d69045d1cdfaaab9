// The served models, from GET /models: version, creation time, held-out and cross-validated metrics, training data.
// Only what an entry has is shown; fields this page does not know are left out.

import { MODEL_NAMES, el, fixed } from "./common.js";

const METRIC_NAMES = { mae: "Mean absolute error", rmse: "Root mean squared error", r2: "R²" };

function metricName(key) {
  if (METRIC_NAMES[key]) return METRIC_NAMES[key];
  const within = /^within_(\d+)_(\d+)$/.exec(key);
  if (within) return `Within ±${within[1]}.${within[2]} grade`;
  const coverage = /^coverage_(\d+)_(\d+)$/.exec(key);
  if (coverage) return `Coverage of the ${Math.round(Number(`${coverage[1]}.${coverage[2]}`) * 100)} % interval`;
  return key.replace(/_/g, " ");
}

const isShare = (key) => /^(within|coverage)_/.test(key);
const value = (key, x) => (isShare(key) ? `${fixed(x * 100, 1)} %` : fixed(x, 3));
const isNumber = (x) => typeof x === "number" && Number.isFinite(x);

function heldOut(metrics) {
  const keys = Object.keys(metrics || {}).filter((k) => isNumber(metrics[k]));
  if (!keys.length) return "";
  return el("table", { class: "metrics" }, el("caption", {}, "Held-out test rows"),
    el("tbody", {}, keys.map((k) => el("tr", {}, el("th", { scope: "row" }, metricName(k)),
      el("td", {}, value(k, metrics[k]))))));
}

function crossValidated(cv) {
  const keys = Object.keys(cv || {}).filter((k) => cv[k] && isNumber(cv[k].mean));
  if (!keys.length) return "";
  const how = [isNumber(cv.folds) ? `${cv.folds} folds` : "", isNumber(cv.repeats) ? `${cv.repeats} repeats` : ""]
    .filter(Boolean).join(" × ");
  return el("table", { class: "metrics" }, el("caption", {}, `Cross-validated${how ? ` (${how})` : ""}`),
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Metric"), el("th", { scope: "col" }, "Mean"),
      el("th", { scope: "col" }, "Std"))),
    el("tbody", {}, keys.map((k) => el("tr", {}, el("th", { scope: "row" }, metricName(k)),
      el("td", {}, value(k, cv[k].mean)), el("td", {}, isNumber(cv[k].std) ? `± ${value(k, cv[k].std)}` : "")))));
}

function item(term, ...details) {
  return details.some((d) => d !== undefined && d !== null && d !== "") ? [el("dt", {}, term), el("dd", {}, ...details)]
    : [];
}

function trainingData(data) {
  if (!data || typeof data !== "object") return [];
  const rows = Object.keys(data).filter((k) => /^rows/.test(k) && isNumber(data[k]))
    .map((k) => `${data[k]} ${k === "rows" ? "rows" : k.replace(/^rows_/, "")}`).join(", ");
  return [...item("Training data", data.file, rows ? ` (${rows})` : ""),
    ...item("Data SHA-256", data.sha256 ? el("code", { class: "hash" }, data.sha256) : "")];
}

function created(iso) {
  if (!iso) return "";
  const when = new Date(iso);
  return el("time", { datetime: iso }, Number.isNaN(when.getTime()) ? iso
    : when.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "long" }));
}

/** One served model's card: only the parts its entry has. */
export function modelCard(kind, m) {
  return el("article", { class: "model", "data-kind": kind },
    el("h3", {}, MODEL_NAMES[kind] || kind),
    el("dl", {}, ...item("Version", m.tag ? el("code", { class: "tag" }, m.tag) : ""),
      ...item("Created", created(m.created)), ...trainingData(m.data)),
    heldOut(m.metrics), crossValidated(m.cv_metrics));
}

/** Fill the models panel from GET /models's answer; returns the entries by kind (empty when unreadable). */
export function showModels(answer) {
  const list = document.getElementById("models-list");
  const models = (answer.ok && answer.data && answer.data.models) || null;
  if (!models) {
    list.replaceChildren(el("p", { class: "error" }, `Could not read the served models: ${answer.status || ""} ` +
      `${(answer.data && answer.data.error) || ""}`));
    return {};
  }
  list.replaceChildren(...Object.entries(models).map(([kind, m]) => modelCard(kind, m || {})));
  return models;
}
