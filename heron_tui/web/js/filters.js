// Filter bars for list pages. Values live in the hash query so filtered lists are deep links.

import { get } from "./api.js";
import { h } from "./util.js";
import { parseHash, setQuery, rangeParams } from "./state.js";

let filterCache = { key: null, value: null };

/** Distinct values for select filters (/api/filters), cached per range. */
export async function filterValues() {
  const range = rangeParams();
  const key = JSON.stringify(range);
  if (filterCache.key === key) return filterCache.value;
  let value = {};
  try { value = await get("/api/filters", range); } catch { value = {}; }
  filterCache = { key, value };
  return value;
}

export function resetFilterCache() {
  filterCache = { key: null, value: null };
}

/**
 * fields: [{key, label, type: "select"|"text"|"number"|"check", options: [values] | [[value, label]],
 *   anyLabel (the empty choice of a select), placeholder, size}]
 * onChange(): called after the hash query is updated.
 */
export function filterBar(fields, onChange) {
  const q = parseHash().query;
  const form = h("form.filters", { role: "search", "aria-label": "Filters", onsubmit: (ev) => ev.preventDefault() });
  const inputs = [];
  for (const f of fields) {
    const id = `f-${f.key}`;
    let input;
    if (f.type === "select") {
      input = h("select", { id, name: f.key }, h("option", { value: "" }, f.anyLabel || "any"),
        (f.options || []).map((o) => {
          const [v, label] = Array.isArray(o) ? o : [o, o];
          return h("option", { value: v ?? "" }, label ?? "none");
        }));
      const cur = q.get(f.key);
      if (cur && ![...input.options].some((o) => o.value === cur)) input.append(h("option", { value: cur }, cur));
      input.value = cur || "";
    } else if (f.type === "check") {
      input = h("input", { id, name: f.key, type: "checkbox" });
      input.checked = q.get(f.key) === "true";
    } else {
      input = h("input", { id, name: f.key, type: f.type === "number" ? "number" : "search", min: f.type === "number" ? "0" : null,
        placeholder: f.placeholder || "", size: f.size || 10 });
      input.value = q.get(f.key) || "";
    }
    inputs.push([f, input]);
    form.append(h("label.filter", { for: id, class: f.type === "check" ? "filter-check" : null },
      f.type === "check" ? [input, h("span", f.label)] : [h("span", f.label), input]));
    const fire = () => {
      const updates = { cursor: null };
      updates[f.key] = f.type === "check" ? (input.checked ? "true" : null) : input.value.trim() || null;
      setQuery(updates);
      onChange();
    };
    input.addEventListener(f.type === "select" || f.type === "check" ? "change" : "change", fire);
  }
  const reset = h("button.btn.btn-sm.btn-ghost", { type: "button" }, "Clear");
  reset.addEventListener("click", () => {
    const updates = {};
    for (const [f, input] of inputs) {
      updates[f.key] = null;
      if (f.type === "check") input.checked = false;
      else input.value = "";
    }
    setQuery(updates);
    onChange();
  });
  form.append(reset);
  return form;
}

/** Current values of the given filter keys from the hash query, as API params. */
export function filterParams(keys) {
  const q = parseHash().query;
  const out = {};
  for (const k of keys) {
    const v = q.get(k);
    if (v !== null && v !== "") out[k] = v;
  }
  return out;
}
