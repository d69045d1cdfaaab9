// The grade classifier's answer for one wine as a bar chart: a row per grade it knows, each bar's value printed
// beside it, the grades that count as good marked (not by colour alone), and the chance of a good wine.

import { el, percent } from "./common.js";

function bar(p) {
  const fill = el("span", { class: "fill" });
  fill.style.width = `${Math.min(100, Math.max(0, p * 100))}%`; // CSSOM: the page's policy refuses style attributes
  return el("span", { class: "bar", "aria-hidden": "true" }, fill);
}

/** The chart of a /classify answer: grades in order, from its `probabilities`; P(good) from its `good`. */
export function gradeChart(answer) {
  const threshold = answer.good_threshold;
  const grades = Object.keys(answer.probabilities).sort((a, b) => Number(a) - Number(b));
  const rows = grades.map((grade) => {
    const p = answer.probabilities[grade];
    const good = Number(grade) >= threshold;
    return el("tr", { class: good ? "good" : undefined, "data-grade": grade, "data-value": p },
      el("th", { scope: "row" }, grade, good ? el("span", { class: "tag" }, " good") : ""),
      el("td", {}, el("span", { class: "cell" }, bar(p), el("span", { class: "value" }, percent(p)))));
  });
  return el("figure", { class: "probabilities", id: "probabilities", "aria-labelledby": "probabilities-title" },
    el("figcaption", { id: "probabilities-title" }, "Probability of each grade, from the grade classifier"),
    el("table", { class: "bars", id: "grade-bars" },
      el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Grade"), el("th", { scope: "col" }, "Probability"))),
      el("tbody", {}, rows)),
    el("p", { class: "good-chance" }, `Chance of a good wine (grade ${threshold} or above, the bars marked good): `,
      el("strong", { id: "good", "data-value": answer.good }, percent(answer.good))),
    el("p", { class: "good-bar" }, bar(answer.good)),
    el("p", {}, "Classifier: ", el("code", { id: "classifier-model" }, answer.model)));
}
