// A batch: a CSV file in either dialect of the data files, or pasted rows, graded in requests of at most the
// service's row limit; a table of the answers (beside the true grade when the file has one) and a CSV download.

import { MODEL_NAMES, api, el, errorsOf, fixed } from "./common.js";
import { offerTrueGrades } from "./feedback.js";
import { reading } from "./wine.js";

const SHOWN_ROWS = 1000; // the table shows this many; the download has every row

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

/** The samples of a CSV text for the given features; throws an Error naming what is missing or malformed. */
export function readTable(text, features) {
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
    return sample;
  });
  // a true grade as typed: the service says what it makes of one that is not a whole number from 0 to 10
  const truths = qualityAt < 0 ? null : rows.map(({ cells }) => reading(cells[qualityAt]) ?? null);
  return { header, rows, samples, truths };
}

const csvCell = (v) => (/[",\r\n]/.test(String(v)) ? `"${String(v).replace(/"/g, '""')}"` : String(v));

/** The uploaded columns followed by the prediction, its interval, the model and the out-of-range features. */
export function resultsCsv(table, predictions, model) {
  const head = [...table.header, "predicted_quality", "interval_low", "interval_high", "interval_coverage", "model",
    "outside_training_range"];
  const lines = table.rows.map(({ cells }, r) => {
    const p = predictions[r];
    return [...cells.map((c) => c.trim()), p.quality, p.interval.low, p.interval.high, p.interval.coverage, model,
      p.outside_training_range.join("; ")].map(csvCell).join(",");
  });
  return [head.map(csvCell).join(","), ...lines].join("\r\n") + "\r\n";
}

/** Wire the batch form: read the CSV, grade it in requests of at most `schema.maxRows` rows, show and offer it. */
export function setUpBatch(schema) {
  const form = document.getElementById("batch-form");
  const fileInput = document.getElementById("batch-file");
  const textInput = document.getElementById("batch-text");
  const status = document.getElementById("batch-status");
  const error = document.getElementById("batch-error");
  const result = document.getElementById("batch-result");
  let download = null;

  const fail = (message) => {
    error.textContent = message;
    error.hidden = false;
    error.focus();
    status.textContent = "";
  };

  async function grade(table, kind) {
    const predictions = [];
    let model = "";
    for (let offset = 0; offset < table.samples.length; offset += schema.maxRows) {
      const chunk = table.samples.slice(offset, offset + schema.maxRows);
      status.textContent = `Grading rows ${offset + 1} to ${offset + chunk.length} of ${table.samples.length}…`;
      const answer = await api("predict_batch", { model: kind, samples: chunk });
      if (!answer.ok) {
        const messages = errorsOf(answer).map(({ loc, msg }) => {
          const at = loc.indexOf("samples");
          const r = at >= 0 && Number.isInteger(loc[at + 1]) ? offset + loc[at + 1] : null;
          const field = loc.slice(at + 2).join(".");
          const where = r === null ? "" : `Row ${r + 1} (line ${table.rows[r].line})${field ? `, ${field}` : ""}: `;
          return where + msg;
        });
        const more = messages.length > 8 ? ` …and ${messages.length - 8} more.` : "";
        throw new Error(messages.slice(0, 8).join(" · ") + more);
      }
      predictions.push(...answer.data.predictions);
      model = answer.data.model;
    }
    return { predictions, model };
  }

  function show(table, predictions, model, source) {
    const hasTruth = table.truths !== null;
    const truth = (r) => (typeof table.truths[r] === "number" ? table.truths[r] : NaN); // a blank is no grade of 0
    const errors = hasTruth ? predictions.map((p, r) => Math.abs(p.quality - truth(r))) : [];
    const known = errors.filter(Number.isFinite);
    const mae = known.length ? known.reduce((a, b) => a + b, 0) / known.length : null;
    if (download) URL.revokeObjectURL(download);
    download = URL.createObjectURL(new Blob([resultsCsv(table, predictions, model)], { type: "text/csv" }));
    const name = `${source.replace(/\.[^.]*$/, "") || "wines"}-graded.csv`;
    const shown = predictions.slice(0, SHOWN_ROWS);
    result.replaceChildren(
      el("p", { id: "batch-summary" }, `${predictions.length} wines graded by `, el("code", {}, model), "."),
      mae === null ? "" : el("p", {}, "Mean absolute error against the file's quality column: ",
        el("strong", { id: "batch-mae" }, fixed(mae, 3)), ` (${known.length} rows).`),
      el("p", {}, el("a", { id: "batch-download", href: download, download: name }, `Download the results (${name})`)),
      offerTrueGrades(table, predictions, schema.feedback),
      predictions.length > SHOWN_ROWS ? el("p", {}, `The table shows the first ${SHOWN_ROWS} rows.`) : "",
      el("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": "Graded wines" },
        el("table", { id: "batch-table" },
          el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Row"),
            hasTruth ? el("th", { scope: "col" }, "True grade") : "", el("th", { scope: "col" }, "Predicted"),
            el("th", { scope: "col" }, "Interval"), hasTruth ? el("th", { scope: "col" }, "Error") : "",
            el("th", { scope: "col" }, "Outside training range"))),
          el("tbody", {}, shown.map((p, r) => el("tr", {},
            el("td", {}, String(r + 1)),
            hasTruth ? el("td", { class: "truth" }, table.truths[r] === null ? "–" : String(table.truths[r])) : "",
            el("td", { class: "predicted" }, fixed(p.quality)),
            el("td", {}, `${fixed(p.interval.low)} to ${fixed(p.interval.high)}`),
            hasTruth ? el("td", {}, fixed(errors[r])) : "",
            el("td", { class: "outside" }, p.outside_training_range.join(", "))))))));
    status.textContent = "";
    result.scrollIntoView({ block: "start" });
  }

  form.addEventListener("reset", () => {
    error.hidden = true;
    status.textContent = "";
    result.replaceChildren();
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    result.replaceChildren();
    const file = fileInput.files[0];
    const source = file ? file.name : "pasted";
    const text = file ? await file.text() : textInput.value;
    if (!text.trim()) return fail("Choose a CSV file or paste rows first.");
    let table;
    try {
      table = readTable(text, schema.features);
    } catch (problem) {
      return fail(problem.message);
    }
    const kind = new FormData(form).get("batch-model") || "sklearn";
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const { predictions, model } = await grade(table, kind);
      show(table, predictions, model, source);
    } catch (problem) {
      fail(`The service refused the batch (${MODEL_NAMES[kind]}): ${problem.message}`);
    } finally {
      button.disabled = false;
    }
  });
  form.querySelectorAll("button").forEach((b) => { b.disabled = false; });
}
