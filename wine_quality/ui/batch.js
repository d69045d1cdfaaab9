// A batch: a CSV file or pasted rows, graded (and classified) in requests of at most the service's row limit, each
// wine with its type (the file's column, or the one chosen for the whole file); a table of the answers beside the
// true grade when the file has one, and a CSV download.

import { MODEL_NAMES, api, byIds, el, errorsOf, fixed, modelOptions, percent, radios, typeOptions } from "./common.js";
import { readTable, resultsCsv } from "./csv.js";
import { offerTrueGrades } from "./feedback.js";

const SHOWN_ROWS = 1000; // the table shows this many; the download has every row

/** The API's messages for one request, its "row N" (counted from 0 in that request) turned into the file's row. */
function located(answer, offset, table) {
  return errorsOf(answer).map(({ loc, msg }) => {
    const where = loc.filter((part) => part !== "data").join(".");
    const text = msg.replace(/\brow (\d+)/g, (found, n) => {
      const r = offset + Number(n);
      return table.rows[r] ? `row ${r + 1} (line ${table.rows[r].line})` : found;
    });
    return where ? `${where}: ${text}` : text;
  });
}

function refusal(messages) {
  const more = messages.length > 8 ? ` …and ${messages.length - 8} more.` : "";
  return messages.slice(0, 8).join(" · ") + more;
}

/** Wire the batch form: read the CSV, grade it in requests of at most `schema.maxRows` rows, show and offer it. */
export function setUpBatch(schema) {
  const [form, fileInput, textInput, status, error, result] = byIds("batch", "form", "file", "text", "status", "error", "result");
  const wineType = schema.wineType;
  const typeName = wineType && wineType.name;
  // the columns of the rows sent: the 11 measurements in the API's order, then the type where it takes one
  const names = schema.features.map((f) => f.name);
  const columns = schema.columns.length ? schema.columns.filter((c) => names.includes(c) || c === typeName)
    : [...names, ...(typeName ? [typeName] : [])];
  document.getElementById("batch-choices").replaceChildren(
    wineType ? radios("batch-type", `Wine type, for a file without a "${typeName}" column`, typeOptions(wineType),
      wineType.default) : "",
    radios("batch-model", "Model", modelOptions(schema.models), schema.models[0]));
  let download = null;

  const fail = (message) => {
    error.textContent = message;
    error.hidden = false;
    error.focus();
    status.textContent = "";
  };

  /** Every row's grade and, where the service classifies, its P(good); a refused grading throws the API's words. */
  async function grade(table, kind, type) {
    const predictions = [];
    const graded = { model: "", classifier: "", goods: schema.classify ? [] : null, unclassified: "" };
    const data = table.samples.map((sample) => columns.map((name) => {
      const value = name === typeName ? sample[name] ?? type : sample[name];
      return value === undefined ? null : value; // a blank cell: the service says what it wants there
    }));
    for (let offset = 0; offset < data.length; offset += schema.maxRows) {
      const body = { columns, data: data.slice(offset, offset + schema.maxRows) };
      const span = `rows ${offset + 1} to ${offset + body.data.length} of ${data.length}`;
      status.textContent = `Grading ${span}…`;
      const answer = await api("predict_batch", { model: kind, ...body });
      if (!answer.ok) throw new Error(refusal(located(answer, offset, table)));
      predictions.push(...answer.data.predictions);
      graded.model = answer.data.model;
      if (!graded.goods) continue;
      status.textContent = `Classifying ${span}…`;
      const classes = await api("classify_batch", body);
      if (classes.ok) {
        graded.goods.push(...classes.data.predictions.map((p) => p.good));
        graded.classifier = classes.data.model;
      } else { // the grades stand without it
        graded.unclassified = refusal(located(classes, offset, table));
        graded.goods = null;
      }
    }
    return { predictions, ...graded };
  }

  function show(table, graded, source, chosen) {
    const { predictions, model, goods } = graded;
    const hasTruth = table.truths !== null;
    const truth = (r) => (typeof table.truths[r] === "number" ? table.truths[r] : NaN); // a blank is no grade of 0
    const errors = hasTruth ? predictions.map((p, r) => Math.abs(p.quality - truth(r))) : [];
    const known = errors.filter(Number.isFinite);
    const mae = known.length ? known.reduce((a, b) => a + b, 0) / known.length : null;
    if (download) URL.revokeObjectURL(download);
    const csv = resultsCsv(table, predictions, model, chosen, goods);
    download = URL.createObjectURL(new Blob([csv], { type: "text/csv" }));
    const name = `${source.replace(/\.[^.]*$/, "") || "wines"}-graded.csv`;
    const shown = predictions.slice(0, SHOWN_ROWS);
    const head = (text) => el("th", { scope: "col" }, text);
    result.replaceChildren(
      el("p", { id: "batch-summary" }, `${predictions.length} wines graded by `, el("code", {}, model),
        chosen ? `, every one as a ${chosen.value} wine (chosen above).` : ", each as its type column says."),
      goods ? el("p", {}, "P(good), the chance of a good wine, from ", el("code", {}, graded.classifier), ".")
        : graded.unclassified ? el("p", { class: "error", id: "batch-unclassified" },
          `No P(good): the grade classifier refused the rows (${graded.unclassified}).`) : "",
      mae === null ? "" : el("p", {}, "Mean absolute error against the file's quality column: ",
        el("strong", { id: "batch-mae" }, fixed(mae, 3)), ` (${known.length} rows).`),
      el("p", {}, el("a", { id: "batch-download", href: download, download: name }, `Download the results (${name})`)),
      offerTrueGrades(table, predictions, schema.feedback),
      predictions.length > SHOWN_ROWS ? el("p", {}, `The table shows the first ${SHOWN_ROWS} rows.`) : "",
      el("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": "Graded wines" },
        el("table", { id: "batch-table" },
          el("thead", {}, el("tr", {}, head("Row"), head("Type"), hasTruth ? head("True grade") : "",
            head("Predicted"), head("Interval"), hasTruth ? head("Error") : "", goods ? head("P(good)") : "",
            head("Outside training range"))),
          el("tbody", {}, shown.map((p, r) => el("tr", {},
            el("td", {}, String(r + 1)),
            el("td", { class: "type" }, p.type || ""),
            hasTruth ? el("td", { class: "truth" }, table.truths[r] === null ? "–" : String(table.truths[r])) : "",
            el("td", { class: "predicted" }, fixed(p.quality)),
            el("td", {}, `${fixed(p.interval.low)} to ${fixed(p.interval.high)}`),
            hasTruth ? el("td", {}, fixed(errors[r])) : "",
            goods ? el("td", { class: "good" }, percent(goods[r])) : "",
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
      table = readTable(text, schema.features, typeName);
    } catch (problem) {
      return fail(problem.message);
    }
    const chosen = new FormData(form);
    const kind = chosen.get("batch-model") || schema.models[0];
    const type = wineType && !table.typed ? { name: typeName, value: chosen.get("batch-type") } : null;
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      show(table, await grade(table, kind, type && type.value), source, type);
    } catch (problem) {
      fail(`The service refused the batch (${MODEL_NAMES[kind] || kind}): ${problem.message}`);
    } finally {
      button.disabled = false;
    }
  });
  form.querySelectorAll("button").forEach((b) => { b.disabled = false; });
}
