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

function resolve(doc, node) {
  const ref = node && node.$ref;
  return ref ? ref.split("/").slice(1).reduce((at, key) => (at ? at[key] : undefined), doc) : node;
}

/**
 * The features, read from the service's OpenAPI document: the `Wine` schema's properties in order, each with its
 * bounds, example and unit (the description ends with the unit in parentheses); /predict_batch's row limit; and
 * /feedback's grade (its description and bounds) and list limit, or null where the service takes no feedback.
 */
export async function loadSchema() {
  const answer = await api("docs.json");
  const wine = answer.ok && answer.data.components && answer.data.components.schemas.Wine;
  if (!wine) throw new Error(`no Wine schema in docs.json (${answer.data.error || answer.status})`);
  const features = Object.entries(wine.properties).map(([name, p]) => {
    const found = /^(.*?)\s*\(([^()]*(?:\([^()]*\)[^()]*)*)\)\s*$/.exec(p.description || "");
    return {
      name, min: p.minimum, max: p.maximum, example: p.example,
      about: found ? found[1] : p.description || "", unit: found ? found[2] : "",
    };
  });
  const batch = answer.data.paths["/predict_batch"];
  const content = batch && batch.post.requestBody && batch.post.requestBody.content["application/json"];
  const samples = content && resolve(answer.data, resolve(answer.data, content.schema).properties.samples);
  const maxRows = (samples && samples.maxItems) || 10000;
  return { features, maxRows, feedback: feedbackShape(answer.data, maxRows) };
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
