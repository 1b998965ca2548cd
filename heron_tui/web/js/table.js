// A dense, sortable, cursor-paged table over one list endpoint ({items, next_cursor, total}).

import { get } from "./api.js";
import { h, clear, fmtInt } from "./util.js";
import { parseHash, setQuery } from "./state.js";

/**
 * columns: [{key, label, sort (server sort field), num (right-aligned), render(row) → node|text, title}]
 * opts: {path, params() → filter params, defaultSort, pageSize, rowHref(row), empty, id}
 * Sort and page size live in the hash query (`sort`), so a list view is a deep link too.
 */
export function pagedTable(columns, opts) {
  const root = h("div.table-wrap", { id: opts.id || null });
  const pageSize = opts.pageSize || 50;
  let cursors = [null]; // cursor of each visited page; last = current page
  let sort = parseHash().query.get("sort") || opts.defaultSort;

  const status = h("div.table-status", { role: "status", "aria-live": "polite" });
  const prev = h("button.btn.btn-sm", { type: "button", disabled: true, "aria-label": "Previous page" }, "‹ Prev");
  const next = h("button.btn.btn-sm", { type: "button", disabled: true, "aria-label": "Next page" }, "Next ›");
  const table = h("table.grid", { "aria-busy": "true" });
  root.append(h("div.table-scroll", table), h("div.table-foot", status, h("div.pager", prev, next)));

  prev.addEventListener("click", () => { if (cursors.length > 1) { cursors.pop(); load(); } });
  next.addEventListener("click", () => { if (root._next) { cursors.push(root._next); load(); } });

  const thead = () => h("thead", h("tr", columns.map((c) => {
    const active = sort && sort.replace(/^-/, "") === c.sort;
    const desc = active && sort.startsWith("-");
    const th = h("th", {
      class: [c.num ? "num" : "", c.sort ? "sortable" : "", active ? "sorted" : ""].join(" "),
      scope: "col", title: c.title || null, "aria-sort": active ? (desc ? "descending" : "ascending") : null,
    });
    if (c.sort) {
      th.append(h("button.th-btn", {
        type: "button",
        onclick: () => {
          sort = active && desc ? c.sort : "-" + c.sort;
          setQuery({ sort });
          cursors = [null];
          load();
        },
      }, c.label, h("span.sort-ind", { "aria-hidden": "true" }, active ? (desc ? "▼" : "▲") : "")));
    } else {
      th.append(c.label);
    }
    return th;
  })));

  const rowNode = (row) => {
    const href = opts.rowHref ? opts.rowHref(row) : null;
    const tr = h("tr", {
      class: href ? "clickable" : null, tabindex: href ? "0" : null, "data-href": href,
    });
    if (opts.rowClass) tr.className += " " + (opts.rowClass(row) || "");
    for (const c of columns) {
      const v = c.render ? c.render(row) : row[c.key];
      tr.append(h("td", { class: c.num ? "num" : c.cls || null }, v === null || v === undefined ? "—" : v));
    }
    if (href) {
      tr.addEventListener("click", (ev) => {
        if (ev.target.closest("a,button") || window.getSelection()?.toString()) return;
        location.hash = href;
      });
      tr.addEventListener("keydown", (ev) => { if (ev.key === "Enter") location.hash = href; });
    } else if (opts.expand) {
      expandable(tr, columns.length, () => opts.expand(row));
    }
    return tr;
  };

  let seq = 0;
  async function load() {
    const mine = ++seq;
    table.setAttribute("aria-busy", "true");
    const params = { ...(opts.params ? opts.params() : {}), limit: pageSize, sort, count: "true" };
    const cursor = cursors[cursors.length - 1];
    if (cursor) params.cursor = cursor;
    let res;
    try {
      res = await get(opts.path, params);
    } catch (err) {
      if (mine !== seq) return;
      table.setAttribute("aria-busy", "false");
      clear(table).append(thead(), h("tbody", h("tr", h("td.error-cell", { colspan: columns.length }, err.message))));
      return;
    }
    if (mine !== seq) return;
    const items = res.items || [];
    root._next = res.next_cursor || null;
    clear(table).append(thead());
    const tbody = h("tbody");
    if (!items.length) {
      tbody.append(h("tr", h("td.empty-cell", { colspan: columns.length }, opts.empty || "Nothing in this range.")));
    }
    for (const row of items) tbody.append(rowNode(row));
    table.append(tbody);
    table.setAttribute("aria-busy", "false");
    const first = (cursors.length - 1) * pageSize;
    const total = typeof res.total === "number" ? ` of ${fmtInt(res.total)}` : "";
    status.textContent = items.length ? `${fmtInt(first + 1)}–${fmtInt(first + items.length)}${total}` : `0${total}`;
    prev.disabled = cursors.length <= 1;
    next.disabled = !root._next;
    root.dataset.rows = String(items.length);
    opts.onLoad?.(res);
  }

  root.reload = () => { cursors = [null]; return load(); };
  root.refresh = () => load(); // same page (auto-refresh)
  return root;
}

/** A static (client-side) table for small result sets, optionally sortable by clicking headers. */
export function staticTable(columns, rows, { rowHref, expand, empty, id, sortable = true } = {}) {
  let sortKey = null;
  let desc = true;
  const table = h("table.grid", { id: id || null });
  const render = () => {
    clear(table);
    const sorted = [...rows];
    if (sortKey) {
      const col = columns.find((c) => c.key === sortKey);
      const val = col.value || ((r) => r[col.key]);
      sorted.sort((a, b) => {
        const x = val(a), y = val(b);
        if (x === y) return 0;
        if (x === null || x === undefined) return 1;
        if (y === null || y === undefined) return -1;
        return (x < y ? -1 : 1) * (desc ? -1 : 1);
      });
    }
    table.append(h("thead", h("tr", columns.map((c) => {
      const active = sortKey === c.key;
      const th = h("th", { class: [c.num ? "num" : "", active ? "sorted" : ""].join(" "), scope: "col",
        title: c.title || null, "aria-sort": active ? (desc ? "descending" : "ascending") : null });
      if (sortable && c.sortable !== false) {
        th.append(h("button.th-btn", { type: "button", onclick: () => {
          desc = active ? !desc : true;
          sortKey = c.key;
          render();
        } }, c.label, h("span.sort-ind", { "aria-hidden": "true" }, active ? (desc ? "▼" : "▲") : "")));
      } else th.append(c.label);
      return th;
    }))));
    const tbody = h("tbody");
    if (!sorted.length) tbody.append(h("tr", h("td.empty-cell", { colspan: columns.length }, empty || "Nothing here.")));
    for (const row of sorted) {
      const href = rowHref ? rowHref(row) : null;
      const tr = h("tr", { class: href ? "clickable" : null, tabindex: href ? "0" : null, "data-href": href });
      for (const c of columns) {
        const v = c.render ? c.render(row) : row[c.key];
        tr.append(h("td", { class: c.num ? "num" : c.cls || null }, v === null || v === undefined ? "—" : v));
      }
      if (href) {
        tr.addEventListener("click", (ev) => { if (!ev.target.closest("a,button")) location.hash = href; });
        tr.addEventListener("keydown", (ev) => { if (ev.key === "Enter") location.hash = href; });
      } else if (expand) {
        expandable(tr, columns.length, () => expand(row));
      }
      tbody.append(tr);
    }
    table.append(tbody);
    table.dataset.rows = String(sorted.length);
  };
  render();
  return h("div.table-scroll", table);
}

/** Make a row toggle a full-width detail row under it (click or Enter). */
function expandable(tr, span, build) {
  tr.classList.add("clickable", "expandable");
  tr.tabIndex = 0;
  tr.setAttribute("aria-expanded", "false");
  let detail = null;
  const toggle = (ev) => {
    if (ev.target.closest("a,button")) return;
    if (detail) {
      detail.remove();
      detail = null;
      tr.setAttribute("aria-expanded", "false");
      return;
    }
    detail = h("tr.detail-row", h("td", { colspan: span }, build()));
    tr.after(detail);
    tr.setAttribute("aria-expanded", "true");
  };
  tr.addEventListener("click", toggle);
  tr.addEventListener("keydown", (ev) => { if (ev.key === "Enter") toggle(ev); });
}
