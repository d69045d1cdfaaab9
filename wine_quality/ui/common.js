// Shared by the page's parts: calling the API, reading the feature schema, small DOM and number helpers.

export const MODEL_NAMES = { sklearn: "scikit-learn", torch: "neural network (PyTorch)", classifier: "grade classifier" };

// Relative to /ui/, so the page keeps working behind a proxy that serves the service under a prefix.
const url = (path) => new URL(`../${path}`, document.baseURI);

/** GET or POST (with a JSON body) an API path; resolves to {ok, status, data} and never throws on HTTP errors. */
export async function api(path, body) {
  const init = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  let response;
  try {
    response = await fetch(url(path), init);
  } catch (error) {
    return { ok: false, status: 0, data: { error: `The service did not answer (${error.message}).` } };
  }
  let data;
  try {
    data = await response.json();
  } catch {
    data = { error: `${response.status} ${response.statusText}` };
  }
  return { ok: response.ok, status: response.status, data };
}

/** The page's elements `${prefix}-${name}`, in the order named. */
export const byIds = (prefix, ...names) => names.map((name) => document.getElementById(`${prefix}-${name}`));

/** An element with attributes (on* become listeners, `class` the class name) and children (strings or nodes). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  node.append(...children.flat().filter((c) => c !== undefined && c !== null && c !== false));
  return node;
}

export const fixed = (x, digits = 2) => (typeof x === "number" && Number.isFinite(x) ? x.toFixed(digits) : "–");

/** A probability as a percentage with one decimal; a tiny one that is not 0 is "< 0.1 %", not "0.0 %". */
export function percent(p) {
  if (typeof p !== "number" || !Number.isFinite(p)) return "–";
  return p > 0 && p < 0.0005 ? "< 0.1 %" : `${(p * 100).toFixed(1)} %`;
}

/** A labelled group of radio buttons, one per option ({value, label}); `checked` is the one ticked (and on reset). */
export function radios(name, legend, options, checked) {
  return el("fieldset", { class: "choice" }, el("legend", {}, legend),
    options.map(({ value, label }) => el("label", {},
      el("input", { type: "radio", name, value, checked: value === checked }), ` ${label}`)));
}

/** Model kinds as radio options, each labelled with its name. */
export const modelOptions = (kinds) => kinds.map((value) => ({ value, label: MODEL_NAMES[value] || value }));

/** The type options of the Wine schema, as radio options ("red wine", "white wine"). */
export const typeOptions = (wineType) => wineType.values.map((value) => ({ value, label: `${value} wine` }));

function resolve(doc, node) {
  const ref = node && node.$ref;
  return ref ? ref.split("/").slice(1).reduce((at, key) => (at ? at[key] : undefined), doc) : node;
}

/**
 * What the page needs of the API, read from the service's OpenAPI document: the features (the `Wine` schema's number
 * properties in order, each with its bounds, example and unit, the description ending with the unit in parentheses);
 * the wine's type (the property with allowed values, or null where the service takes none); the grading models and
 * the batch columns /predict_batch takes; the row limit of both batch routes; whether the service classifies; and
 * /feedback's grade (its description and bounds) and list limit, or null where the service takes no feedback.
 */
export async function loadSchema() {
  const answer = await api("docs.json");
  const doc = answer.ok ? answer.data : {};
  const wine = doc.components && doc.components.schemas.Wine;
  if (!wine) throw new Error(`no Wine schema in docs.json (${answer.data.error || answer.status})`);
  const properties = Object.entries(wine.properties);
  const features = properties.filter(([, p]) => p.type === "number").map(([name, p]) => {
    const found = /^(.*?)\s*\(([^()]*(?:\([^()]*\)[^()]*)*)\)\s*$/.exec(p.description || "");
    return {
      name, min: p.minimum, max: p.maximum, example: p.example,
      about: found ? found[1] : p.description || "", unit: found ? found[2] : "",
    };
  });
  const [typeName, type] = properties.find(([, p]) => Array.isArray(p.enum)) || [];
  const predict = batchShape(doc, "/predict_batch");
  if (!predict) throw new Error("no /predict_batch in docs.json");
  const classify = doc.paths["/classify"] && batchShape(doc, "/classify_batch");
  const maxRows = Math.min(predict.maxRows, classify ? classify.maxRows : Infinity);
  return {
    features, maxRows, feedback: feedbackShape(doc, maxRows),
    wineType: type ? { name: typeName, values: type.enum, default: type.default, about: type.description || "" } : null,
    models: predict.models, columns: predict.columns, classify: Boolean(classify),
  };
}

/** A batch route's row limit, the models its `model` field allows, and the column names its `columns` field takes. */
function batchShape(doc, path) {
  const post = doc.paths[path] && doc.paths[path].post;
  const content = post && post.requestBody && post.requestBody.content["application/json"];
  if (!content) return null;
  const body = resolve(doc, content.schema);
  const samples = resolve(doc, body.properties.samples);
  const model = body.properties.model || {};
  const columns = body.properties.columns;
  return {
    maxRows: (samples && samples.maxItems) || 10000,
    models: model.enum || (model.const ? [model.const] : []),
    columns: ((columns && columns.prefixItems) || []).map((item) => item.const),
  };
}

function feedbackShape(doc, maxRows) {
  const post = doc.paths["/feedback"] && doc.paths["/feedback"].post;
  const body = post && post.requestBody && resolve(doc, post.requestBody.content["application/json"].schema);
  const forms = (body && (body.oneOf || body.anyOf)) || [];
  const one = forms.map((f) => resolve(doc, f)).find((f) => f.properties && f.properties.quality);
  if (!one) return null;
  const list = forms.find((f) => f.type === "array");
  const q = one.properties.quality;
  return { about: q.description || "", min: q.minimum, max: q.maximum, maxItems: (list && list.maxItems) || maxRows };
}

/** The grade and its interval drawn on the 0-10 scale. */
export function gradeScale(quality, interval) {
  const at = (x) => `${Math.min(100, Math.max(0, x * 10))}%`;
  const band = el("span", { class: "band" });
  const mark = el("span", { class: "mark" });
  mark.style.left = at(quality);
  if (interval) {
    band.style.left = at(interval.low);
    band.style.width = `calc(${at(interval.high)} - ${at(interval.low)})`;
  }
  const ticks = el("span", { class: "ticks", "aria-hidden": "true" },
    Array.from({ length: 11 }, (_, i) => el("span", {}, String(i))));
  const label = interval
    ? `Grade ${fixed(quality)} on the 0 to 10 scale, ${Math.round(interval.coverage * 100)} % interval ` +
      `${fixed(interval.low)} to ${fixed(interval.high)}`
    : `Grade ${fixed(quality)} on the 0 to 10 scale`;
  return el("span", { class: "scale", role: "img", "aria-label": label }, el("span", { class: "track" }, band, mark),
    ticks);
}

/** The messages of an API error answer: pydantic's list in `detail`, else whatever the answer says. */
export function errorsOf(answer) {
  const detail = answer.data && answer.data.detail;
  if (Array.isArray(detail)) {
    return detail.map((d) => ({ loc: Array.isArray(d.loc) ? d.loc : [], msg: String(d.msg || d.type || "invalid") }));
  }
  const text = (answer.data && (answer.data.error || answer.data.detail)) || `HTTP ${answer.status}`;
  return [{ loc: [], msg: typeof text === "string" ? text : JSON.stringify(text) }];
}
