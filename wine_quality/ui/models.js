// The served models, from GET /models: version, creation time, training data, and each wine type's figures side by
// side (rows, held-out and cross-validated metrics, a classifier's probability scores). Only what an entry has is
// shown; fields this page does not know are left out.

import { MODEL_NAMES, el, fixed } from "./common.js";

const METRIC_NAMES = {
  mae: "Mean absolute error", rmse: "Root mean squared error", r2: "R²", brier: "Brier score",
  brier_good: "Brier score of P(good)", accuracy: "Accuracy of the likeliest grade",
};
const ROW_NAMES = {
  rows: "In the data files", rows_unique: "Unique", rows_train: "Training", rows_test: "Held out",
  rows_fitted: "Fitted by the saved model",
};
const LAYOUTS = { pooled: "one model for every type", per_type: "one model per type" };

function metricName(key) {
  if (METRIC_NAMES[key]) return METRIC_NAMES[key];
  const within = /^within_(\d+)_(\d+)$/.exec(key);
  if (within) return `Within ±${within[1]}.${within[2]} grade`;
  return key.replace(/_/g, " ");
}

const isShare = (key) => /^(within|coverage|accuracy)/.test(key);
const value = (key, x) => (isShare(key) ? `${fixed(x * 100, 1)} %` : fixed(x, 3));
const isNumber = (x) => typeof x === "number" && Number.isFinite(x);
const union = (lists) => [...new Set(lists.flat())];

/**
 * A table of one figure per type, side by side: `rows` are [key, label, type section -> number or undefined], and
 * `cell` writes a number (with more below it if need be). Left out when no type has any of its figures.
 */
function byType(types, figures, caption, rows, cell = (key, x) => value(key, x)) {
  const names = Object.keys(types);
  const kept = rows.filter(([, , pick]) => names.some((t) => isNumber(pick(types[t]))));
  if (!kept.length) return "";
  return el("table", { class: "metrics", "data-figures": figures }, el("caption", {}, caption),
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Figure"),
      names.map((t) => el("th", { scope: "col" }, `${t} wines`)))),
    el("tbody", {}, kept.map(([key, label, pick]) => el("tr", { "data-metric": key },
      el("th", { scope: "row" }, label),
      names.map((t) => el("td", { "data-type": t }, isNumber(pick(types[t])) ? cell(key, pick(types[t]), t) : "–"))))));
}

function typeFigures(m) {
  const types = Object.fromEntries(Object.entries(m.types && typeof m.types === "object" ? m.types : {})
    .map(([t, s]) => [t, s && typeof s === "object" ? s : {}]));
  const sections = Object.values(types);
  const level = isNumber(m.served_coverage) ? String(m.served_coverage) : null;
  const held = union(sections.map((s) => Object.keys(s.metrics || {}).filter((k) => isNumber(s.metrics[k]))));
  const servedLevel = level ? [
    ["coverage", `Coverage of the ${fixed(m.served_coverage * 100, 0)} % interval`,
      (s) => ((s.metrics || {}).coverage || {})[level]],
    ["width", `Mean width of the ${fixed(m.served_coverage * 100, 0)} % interval`,
      (s) => ((s.metrics || {}).width || {})[level]],
  ] : [];
  const cvKeys = union(sections.map((s) => Object.keys(s.cv_metrics || {})
    .filter((k) => s.cv_metrics[k] && isNumber(s.cv_metrics[k].mean))));
  const cv = sections.map((s) => s.cv_metrics || {}).find((c) => isNumber(c.folds)) || {};
  const how = [isNumber(cv.folds) ? `${cv.folds} folds` : "", isNumber(cv.repeats) ? `${cv.repeats} repeats` : ""]
    .filter(Boolean).join(" × ");
  const scores = (s) => (s.probabilities || {}).held_out || {};
  const baselines = (key, x, t) => {
    const figures = types[t].probabilities || {};
    const others = [["prior", figures.prior_baseline], ["majority", figures.majority_baseline]]
      .filter(([, b]) => b && isNumber(b[key])).map(([name, b]) => `${name} ${value(key, b[key])}`);
    return [value(key, x), others.length ? el("small", { class: "below" }, `baselines: ${others.join(", ")}`) : ""];
  };
  return [
    byType(types, "rows", "Wines", Object.entries(ROW_NAMES).map(([k, label]) => [k, label, (s) => (s.rows || {})[k]]),
      (key, x) => String(x)),
    byType(types, "held-out", "Held-out test rows",
      [...held.map((k) => [k, metricName(k), (s) => (s.metrics || {})[k]]), ...servedLevel]),
    byType(types, "cv", `Cross-validated${how ? ` (${how})` : ""}`,
      cvKeys.map((k) => [k, metricName(k), (s) => ((s.cv_metrics || {})[k] || {}).mean]),
      (key, x, t) => {
        const std = types[t].cv_metrics[key].std;
        return [value(key, x), isNumber(std) ? el("small", { class: "below" }, `± ${value(key, std)}`) : ""];
      }),
    byType(types, "probabilities", "Grade probabilities on held-out rows",
      union(sections.map((s) => Object.keys(scores(s)))).map((k) => [k, metricName(k), (s) => scores(s)[k]]),
      baselines),
  ];
}

function item(term, ...details) {
  return details.some((d) => d !== undefined && d !== null && d !== "") ? [el("dt", {}, term), el("dd", {}, ...details)]
    : [];
}

function trainingData(data) {
  const files = data && Array.isArray(data.files) ? data.files.filter((f) => f && f.file) : [];
  return item("Training data", files.length ? el("ul", { class: "files" }, files.map((f) => el("li", {},
    f.file, isNumber(f.rows) ? ` (${f.rows} rows)` : "",
    f.sha256 ? el("code", { class: "hash", title: "SHA-256" }, f.sha256) : ""))) : "");
}

function created(iso) {
  if (!iso) return "";
  const when = new Date(iso);
  return el("time", { datetime: iso }, Number.isNaN(when.getTime()) ? iso
    : when.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "long" }));
}

function grades(classification) {
  const c = classification || {};
  if (!Array.isArray(c.classes) || !c.classes.length) return [];
  return item("Grades", `${c.classes.join(", ")}`, isNumber(c.good_threshold) ? `; good from ${c.good_threshold}` : "");
}

/** One served model's card: only the parts its entry has. */
export function modelCard(kind, m) {
  return el("article", { class: "model", "data-kind": kind },
    el("h3", {}, MODEL_NAMES[kind] || kind),
    el("dl", {}, ...item("Version", m.tag ? el("code", { class: "tag" }, m.tag) : ""),
      ...item("Created", created(m.created)),
      ...item("Estimator", m.estimator || "", m.estimator && LAYOUTS[m.layout] ? `, ${LAYOUTS[m.layout]}` : ""),
      ...grades(m.classification), ...trainingData(m.data)),
    typeFigures(m));
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
