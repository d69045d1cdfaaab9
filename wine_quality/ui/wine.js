// One wine: the form built from the feature schema, its grade beside the classifier's probabilities, and the API's
// messages beside the fields.

import { gradeChart } from "./chart.js";
import { api, el, errorsOf, fixed, gradeScale, modelOptions, radios, typeOptions } from "./common.js";

const ROUTES = { sklearn: "predict", torch: "predict_net" };

/** What the user typed, as the API expects it: a number where it reads as one, else the text (the API says why). */
export function reading(text) {
  const trimmed = text.trim();
  if (trimmed === "") return undefined; // left out: the API answers "Field required" for it
  const number = Number(/^[^.]*,[^.,]*$/.test(trimmed) ? trimmed.replace(",", ".") : trimmed); // 3,51 is 3.51
  return Number.isFinite(number) ? number : trimmed;
}

/**
 * Warnings for what lies outside the answering model's training range for the wine's type: each measurement, with
 * that type's range where the card has it, or the type itself (a model trained on the other type only).
 */
export function rangeWarnings(names, sample, model, features, type) {
  const section = (model && model.types && model.types[type]) || {};
  const ranges = section.feature_ranges || {};
  return names.map((name) => {
    if (!features.some((f) => f.name === name)) {
      const seen = Object.keys((model && model.types) || {}).join(" and ");
      return `The model was not trained on ${type} wines${seen ? ` (only on ${seen} wines)` : ""}: ` +
        "the grade is an extrapolation.";
    }
    const unit = (features.find((f) => f.name === name) || {}).unit || "";
    const range = ranges[name];
    const value = sample[name] === undefined ? "" : ` = ${sample[name]}${unit && unit !== name ? ` ${unit}` : ""}`;
    const round = (x) => Number(Number(x).toPrecision(6)); // 0.99007, not 0.9900700000000001
    const span = Array.isArray(range) ? ` (${round(range[0])} to ${round(range[1])})` : "";
    return `${name}${value} is outside the range the model was trained on${span}: the grade is an extrapolation.`;
  });
}

/**
 * Build the form's fields from the schema and wire its buttons; `models()` gives the served models once read, and
 * `taster` is the taster's grade form, offered under each graded wine.
 */
export function setUpWineForm(schema, models, taster) {
  const form = document.getElementById("wine-form");
  const fields = document.getElementById("fields");
  const formError = document.getElementById("form-error");
  const result = document.getElementById("result");
  const wineType = schema.wineType;
  const kinds = schema.models.filter((kind) => ROUTES[kind]);
  document.getElementById("wine-choices").replaceChildren(
    wineType ? radios("wine-type", "Wine type", typeOptions(wineType), wineType.default) : "",
    radios("model", "Model", modelOptions(kinds), kinds[0]));
  let asked = 0; // the latest submission: an older answer arriving late is not shown
  const inputs = schema.features.map((f, i) => {
    const input = el("input", {
      id: `f${i}`, name: f.name, type: "text", inputmode: "decimal", autocomplete: "off", spellcheck: "false",
      "aria-describedby": `h${i} e${i}`,
    });
    const unit = f.unit && f.unit !== f.name ? el("span", { class: "unit" }, f.unit) : "";
    fields.append(el("div", { class: "field" },
      el("label", { for: input.id }, el("span", { class: "name" }, f.name), " ", unit),
      input,
      el("small", { id: `h${i}`, class: "hint" }, `${f.about && f.about !== f.name ? `${f.about}; ` : ""}` +
        `accepted: ${f.min} to ${f.max}`),
      el("span", { id: `e${i}`, class: "field-error", role: "alert" })));
    return input;
  });

  function clearErrors() {
    formError.hidden = true;
    formError.textContent = "";
    inputs.forEach((input, i) => {
      input.removeAttribute("aria-invalid");
      document.getElementById(`e${i}`).textContent = "";
    });
  }

  function showErrors(errors) {
    const general = [];
    let first = null;
    for (const { loc, msg } of errors) {
      const i = schema.features.findIndex((f) => loc.includes(f.name));
      if (i < 0) {
        general.push(msg);
        continue;
      }
      inputs[i].setAttribute("aria-invalid", "true");
      const slot = document.getElementById(`e${i}`);
      slot.textContent = slot.textContent ? `${slot.textContent} ${msg}` : msg;
      first = first || inputs[i];
    }
    if (general.length) {
      formError.textContent = general.join(" ");
      formError.hidden = false;
    }
    (first || formError).focus();
  }

  function showAnswer(data, sample) {
    const model = Object.values(models()).find((m) => m.tag === data.model);
    const warnings = rangeWarnings(data.outside_training_range || [], sample, model, schema.features, data.type);
    const interval = data.interval;
    const chart = el("div", { class: "chart-slot", id: "chart-slot" });
    result.replaceChildren(el("div", { class: "answer" },
      el("div", { class: "graded" },
        el("h3", {}, "Predicted grade"),
        el("p", { class: "grade" }, el("output", { id: "grade", for: inputs.map((x) => x.id).join(" ") },
          fixed(data.quality)), el("span", { class: "of" }, " / 10")),
        data.type ? el("p", {}, "Graded as a ", el("strong", { id: "answer-type" }, data.type), " wine.") : "",
        gradeScale(data.quality, interval),
        interval ? el("p", { id: "interval" }, `${Math.round(interval.coverage * 100)} % interval: `,
          `${fixed(interval.low)} to ${fixed(interval.high)}`) : "",
        el("p", {}, "Model: ", el("code", { id: "answer-model" }, data.model)),
        warnings.length ? el("ul", { class: "warnings", id: "warnings" },
          warnings.map((w) => el("li", { class: "warning" }, w))) : ""),
      chart));
    taster.offer(data.id);
    result.scrollIntoView({ block: "nearest" }); // below the form on a phone
    return chart;
  }

  /** The classifier's probabilities for the wine just graded, drawn into `slot` unless another wine came since. */
  async function classify(sample, slot, turn) {
    slot.replaceChildren(el("p", { role: "status" }, "Asking the grade classifier…"));
    slot.setAttribute("aria-busy", "true");
    const answer = await api("classify", sample);
    if (turn !== asked) return;
    slot.removeAttribute("aria-busy");
    slot.replaceChildren(answer.ok ? gradeChart(answer.data) : el("p", { class: "error", id: "classify-error" },
      `No grade probabilities: ${errorsOf(answer).map(({ msg }) => msg).join(" ")}`));
  }

  document.getElementById("example").addEventListener("click", () => {
    clearErrors();
    schema.features.forEach((f, i) => { inputs[i].value = f.example === undefined ? "" : String(f.example); });
    // the example is a wine without a type: the API's default type is its type
    if (wineType) form.querySelector(`input[name=wine-type][value="${wineType.default}"]`).checked = true;
    inputs[0].focus();
  });
  form.addEventListener("reset", () => { asked += 1; clearErrors(); result.replaceChildren(); taster.withdraw(); });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    taster.withdraw();
    const sample = {};
    schema.features.forEach((f, i) => {
      const value = reading(inputs[i].value);
      if (value !== undefined) sample[f.name] = value;
    });
    const chosen = new FormData(form);
    if (wineType) sample[wineType.name] = chosen.get("wine-type");
    const kind = chosen.get("model") || kinds[0];
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    result.setAttribute("aria-busy", "true");
    asked += 1;
    const turn = asked;
    const answer = await api(ROUTES[kind], sample);
    button.disabled = false;
    result.removeAttribute("aria-busy");
    if (turn !== asked) return;
    if (answer.ok) {
      const slot = showAnswer(answer.data, sample);
      if (schema.classify) classify(sample, slot, turn);
    } else {
      result.replaceChildren();
      showErrors(errorsOf(answer));
    }
  });
  document.getElementById("form-status").textContent =
    `The ${schema.features.length} measurements, with the bounds the service accepts.`;
  form.querySelectorAll("button").forEach((b) => { b.disabled = false; });
}
