// A batch's CSV: read in either dialect of the data files (or pasted rows), and written back with the answers.

import { reading } from "./wine.js";

/** Records of a CSV text, each {cells, line}: the delimiter (`,` `;` or tab) is the first line's most frequent. */
export function parseCsv(text) {
  text = text.replace(/^\uFEFF/, "");
  const firstLine = text.split(/\r?\n/, 1)[0].replace(/"[^"]*"/g, "");
  const delimiter = [",", ";", "\t"].reduce((best, d) => (firstLine.split(d).length > firstLine.split(best).length ? d : best));
  const records = [];
  let cells = [], cell = "", quoted = false, line = 1, start = 1, i = 0;
  const endRecord = () => {
    cells.push(cell);
    if (cells.length > 1 || cells[0].trim() !== "") records.push({ cells, line: start });
    cells = []; cell = "";
  };
  while (i < text.length) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { cell += '"'; i += 1; }
      else if (c === '"') quoted = false;
      else { if (c === "\n") line += 1; cell += c; }
    } else if (c === '"') quoted = true;
    else if (c === delimiter) { cells.push(cell); cell = ""; }
    else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i += 1;
      endRecord();
      line += 1;
      start = line;
    } else cell += c;
    i += 1;
  }
  if (cell !== "" || cells.length) endRecord();
  return records;
}

/**
 * The samples of a CSV text for the given features, each with its type where the file has a column named `typeName`
 * (its values as written: the service says what it makes of them); throws an Error naming what is missing or
 * malformed.
 */
export function readTable(text, features, typeName = null) {
  const records = parseCsv(text);
  if (!records.length) throw new Error("There are no rows to grade.");
  const names = features.map((f) => f.name);
  const first = records[0].cells.map((c) => c.trim());
  const headerless = first.every((c) => c !== "" && Number.isFinite(Number(c)));
  // Pasted rows without a header are read in the schema's order, a 12th value being the true grade.
  const header = headerless ? [...names, "quality"].slice(0, first.length) : first;
  const index = (name) => header.findIndex((h) => h.toLowerCase() === name.toLowerCase());
  const missing = names.filter((name) => index(name) < 0);
  if (missing.length) {
    const quoted = missing.map((m) => `"${m}"`).join(", ");
    throw new Error(`The file has no ${missing.length > 1 ? "columns" : "column"} ${quoted}: ` +
      `the header must name all ${names.length} measurements (${names.join(", ")}).`);
  }
  const columns = names.map(index);
  const qualityAt = index("quality");
  const typeAt = typeName ? index(typeName) : -1;
  const rows = records.slice(headerless ? 0 : 1);
  if (!rows.length) throw new Error("The file has a header but no rows to grade.");
  for (const row of rows) {
    if (row.cells.length !== header.length) {
      throw new Error(`Line ${row.line} has ${row.cells.length} values where the header has ${header.length}.`);
    }
  }
  const samples = rows.map(({ cells }) => {
    const sample = {};
    names.forEach((name, k) => {
      const value = reading(cells[columns[k]]);
      if (value !== undefined) sample[name] = value;
    });
    if (typeAt >= 0) sample[typeName] = cells[typeAt].trim();
    return sample;
  });
  // a true grade as typed: the service says what it makes of one that is not a whole number from 0 to 10
  const truths = qualityAt < 0 ? null : rows.map(({ cells }) => reading(cells[qualityAt]) ?? null);
  return { header, rows, samples, truths, typed: typeAt >= 0 };
}

const csvCell = (v) => (/[",\r\n]/.test(String(v)) ? `"${String(v).replace(/"/g, '""')}"` : String(v));

/**
 * The uploaded columns; `type` when the page chose every wine's type (`chosen`: {name, value}); then the prediction,
 * its interval, the model, the out-of-range features and, where the classifier answered (`goods`), P(good).
 */
export function resultsCsv(table, predictions, model, chosen = null, goods = null) {
  const head = [...table.header, ...(chosen ? [chosen.name] : []), "predicted_quality", "interval_low",
    "interval_high", "interval_coverage", "model", "outside_training_range", ...(goods ? ["good_probability"] : [])];
  const lines = table.rows.map(({ cells }, r) => {
    const p = predictions[r];
    return [...cells.map((c) => c.trim()), ...(chosen ? [chosen.value] : []), p.quality, p.interval.low,
      p.interval.high, p.interval.coverage, model, p.outside_training_range.join("; "), ...(goods ? [goods[r]] : [])]
      .map(csvCell).join(",");
  });
  return [head.map(csvCell).join(","), ...lines].join("\r\n") + "\r\n";
}
