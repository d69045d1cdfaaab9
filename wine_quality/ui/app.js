// Start-up: read the feature schema and the served models from the service, then set up the page's parts.

import { api, loadSchema } from "./common.js";
import { setUpBatch } from "./batch.js";
import { setUpTasterForm } from "./feedback.js";
import { showModels } from "./models.js";
import { setUpWineForm } from "./wine.js";

let models = {};
api("models").then((answer) => { models = showModels(answer); });

loadSchema().then((schema) => {
  setUpWineForm(schema, () => models, setUpTasterForm(schema.feedback));
  setUpBatch(schema);
  document.body.dataset.ready = "true";
}).catch((problem) => {
  const status = document.getElementById("form-status");
  status.textContent = `The page could not read the service's feature schema: ${problem.message}`;
  status.classList.add("error");
});
