// The tasters' true grades sent back to the service (POST /feedback) for wines it graded: one wine's grade from a
// small form, or a batch file's quality column. The service decides what it accepts; the page shows its answer.

import { api, byIds, el, errorsOf } from "./common.js";
import { reading } from "./wine.js";

const SHOWN_REFUSALS = 50;
const when = (iso) => {
  const t = new Date(iso);
  return Number.isNaN(t.getTime()) ? iso : t.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
};
const count = (n, one, many) => `${n} ${n === 1 ? one : many}`;

/** The form under a graded wine; `shape` is /feedback's grade as the OpenAPI document gives it (null: no form). */
export function setUpTasterForm(shape) {
  const [form, input, error, status] = byIds("taster", "form", "grade", "error", "status");
  const button = form.querySelector("button[type=submit]");
  let wine = null;
  const say = (text, isError = false) => {
    status.textContent = text;
    status.classList.toggle("error", isError);
  };
  const clear = () => {
    input.removeAttribute("aria-invalid");
    error.textContent = "";
    say("");
  };
  if (shape) document.getElementById("taster-hint").textContent = shape.about || `accepted: ${shape.min} to ${shape.max}`;

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clear();
    const grade = reading(input.value); // left out when empty: the service says the grade is required
    button.disabled = true;
    const answer = await api("feedback", grade === undefined ? { id: wine } : { id: wine, quality: grade });
    button.disabled = false;
    if (answer.ok) {
      const [stored] = answer.data.stored;
      say(stored.new ? `Stored: the taster's grade ${stored.quality} for this wine.`
        : `Already stored with the same grade, ${stored.quality} (received ${when(stored.received)}): nothing changed.`);
      return;
    }
    const conflict = answer.data && answer.data.conflicts && answer.data.conflicts[wine];
    if (conflict) {
      say(`Not stored: this wine already has the taster's grade ${conflict.stored}, sent before; ${conflict.sent} ` +
        `was not stored. The service said: ${answer.data.error}.`, true);
      return;
    }
    const messages = errorsOf(answer);
    const here = messages.filter(({ loc }) => loc.includes("quality")).map(({ msg }) => msg);
    const rest = messages.filter(({ loc }) => !loc.includes("quality")).map(({ msg }) => msg);
    if (rest.length) say(`Not stored (${answer.status || "no answer"}): ${rest.join(" ")}`, true);
    if (here.length) {
      error.textContent = here.join(" ");
      input.setAttribute("aria-invalid", "true");
      input.focus();
    }
  });
  return {
    /** Show the form for the wine the service answered with this id. */
    offer(id) {
      wine = id;
      document.getElementById("taster-id").textContent = id;
      input.value = "";
      clear();
      form.hidden = !shape || !id;
    },
    withdraw() {
      wine = null;
      form.hidden = true;
      clear();
    },
  };
}

/** What the service's refusal of a list says about each item (by position in `sent`); empty when it names none. */
export function refusals(answer, sent) {
  const data = answer.data || {};
  const reasons = new Map();
  const add = (i, reason) => reasons.set(i, reasons.has(i) ? `${reasons.get(i)}; ${reason}` : reason);
  sent.forEach((item, i) => {
    if ((data.unknown || []).includes(item.id)) add(i, "no captured wine has its id");
    const conflict = data.conflicts && data.conflicts[item.id];
    if (conflict) add(i, `another grade was already received (stored ${conflict.stored}, sent ${conflict.sent})`);
  });
  if (Array.isArray(data.detail)) {
    for (const { loc, msg } of errorsOf(answer)) {
      const at = loc.findIndex(Number.isInteger);
      if (at >= 0 && loc[at] < sent.length) add(loc[at], [...loc.slice(at + 1), msg].join(": "));
    }
  }
  return reasons;
}

/**
 * Send [{row, id, quality}] in lists of at most `limit`. The service stores a list all or nothing, so the items it
 * refuses are left out and the rest of their list is sent again. Resolves to {stored, again, refused: [{row, reason}]}.
 */
export async function sendTrueGrades(items, limit, progress = () => {}) {
  const outcome = { stored: 0, again: 0, refused: [] };
  for (let offset = 0; offset < items.length; offset += limit) {
    let pending = items.slice(offset, offset + limit);
    progress(offset, pending.length);
    while (pending.length) {
      const answer = await api("feedback", pending.map(({ id, quality }) => ({ id, quality })));
      if (answer.ok) {
        answer.data.stored.forEach((s) => { outcome[s.new ? "stored" : "again"] += 1; });
        break;
      }
      const reasons = refusals(answer, pending);
      if (!reasons.size) { // nothing to leave out: the whole list is refused, for the service's reason
        const why = errorsOf(answer).map(({ msg }) => msg).join(" ");
        outcome.refused.push(...pending.map(({ row }) => ({ row, reason: why })));
        break;
      }
      reasons.forEach((reason, i) => outcome.refused.push({ row: pending[i].row, reason }));
      pending = pending.filter((_, i) => !reasons.has(i));
    }
  }
  outcome.refused.sort((a, b) => a.row - b.row);
  return outcome;
}

function report({ stored, again, refused }, table) {
  const where = (r) => `Row ${r + 1} (line ${table.rows[r].line})`;
  return [
    el("p", { id: "feedback-summary" }, `${count(stored + again, "true grade", "true grades")} stored`,
      again ? ` (${again} of them already were, with the same grade).` : "."),
    refused.length ? el("p", { class: "error" }, `${count(refused.length, "grade", "grades")} refused:`) : "",
    refused.length ? el("ul", { id: "feedback-refused", class: "refused" }, refused.slice(0, SHOWN_REFUSALS)
      .map(({ row, reason }) => el("li", {}, `${where(row)}: ${reason}`))) : "",
    refused.length > SHOWN_REFUSALS ? el("p", {}, `…and ${refused.length - SHOWN_REFUSALS} more.`) : "",
  ];
}

/** A batch's offer to send the file's quality column as the tasters' grades ("" without one, or without /feedback). */
export function offerTrueGrades(table, predictions, shape) {
  if (!table.truths || !shape) return "";
  const items = predictions.map((p, r) => ({ row: r, id: p.id, quality: table.truths[r] }))
    .filter(({ quality }) => quality !== null);
  if (!items.length) return "";
  const missing = predictions.length - items.length;
  const status = el("div", { id: "feedback-result", role: "status" });
  const send = async (event) => {
    event.target.disabled = true;
    const outcome = await sendTrueGrades(items, shape.maxItems, (offset, n) => {
      status.textContent = `Sending true grades ${offset + 1} to ${offset + n} of ${items.length}…`;
    });
    event.target.disabled = false;
    status.replaceChildren(...report(outcome, table));
  };
  return el("div", { class: "truths" },
    el("p", {}, `The quality column gives ${count(items.length, "wine its", "wines their")} true grade`,
      missing ? ` (${count(missing, "row has", "rows have")} none)` : "", ". Sent as the tasters' grades, they are ",
      "kept beside these predictions and count in each model's live accuracy."),
    el("div", { class: "actions" },
      el("button", { type: "button", id: "send-truths", onclick: send }, `Send the ${items.length} true grades`)),
    status);
}
