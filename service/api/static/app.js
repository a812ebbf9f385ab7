/* Tanya web page: plain JavaScript, no build step, no network beyond this origin.
 *
 * Untrusted text (questions, answers, passages, documents, error details) only ever reaches
 * the page through textContent / createTextNode, never through innerHTML.
 */
(() => {
  "use strict";

  const KEY_STORAGE = "tanya.apiKey";
  // Passage text kept on each side of the highlighted sentence until "Full passage" is pressed.
  const contextChars = () => (window.matchMedia("(max-width: 600px)").matches ? 120 : 200);

  const STRINGS = {
    en: {
      answer: "Answer",
      sources: (n) => (n === 1 ? "1 source" : `${n} sources`),
      closest: "Closest passages (they do not answer the question)",
      notCovered: "Not covered by the sources",
      notCoveredHint: "Try rephrasing, or ask about Tokutei Ginou, magang (apprenticeships) or the METI internship.",
      open: "Open document",
      showFull: "Full passage",
      showLess: "Less",
      why: "Retrieval details",
      score: "score",
      rank: "rank",
      confidence: "Confidence",
      mode: "mode",
      took: "took",
      section: "Section",
      jumpTo: (n) => `Go to source ${n}`,
      citeLabel: (n) => `Source ${n}`,
      chars: "characters",
      legend: ["cited passage", "passage", "supporting sentence", "sentence"],
      jump: "Jump to highlight",
      close: "Close document (Escape)",
      lang: { en: "English", id: "Indonesian" },
    },
    id: {
      answer: "Jawaban",
      sources: (n) => `${n} sumber`,
      closest: "Bagian terdekat (tidak menjawab pertanyaan)",
      notCovered: "Tidak dibahas dalam sumber",
      notCoveredHint: "Coba ubah pertanyaan, atau tanyakan tentang Tokutei Ginou, magang, atau program magang METI.",
      open: "Buka dokumen",
      showFull: "Kutipan lengkap",
      showLess: "Ringkas",
      why: "Detail pencarian",
      score: "skor",
      rank: "peringkat",
      confidence: "Keyakinan",
      mode: "mode",
      took: "waktu",
      section: "Bagian",
      jumpTo: (n) => `Ke sumber ${n}`,
      citeLabel: (n) => `Sumber ${n}`,
      chars: "karakter",
      legend: ["bagian yang dikutip", "kutipan", "kalimat pendukung", "kalimat"],
      jump: "Ke kalimat pendukung",
      close: "Tutup dokumen (Escape)",
      lang: { en: "Inggris", id: "Indonesia" },
    },
  };

  // Same rule as service/qa/messages.py EMPHASIS_PATTERN (a test keeps them equal): emphasis markers are hidden for reading.
  const EMPHASIS = /(\*{1,3}|_{2,3})(?=\S)|(?<=\S)(\*{1,3}|_{2,3})/g;
  const HEADING = /^(#{1,6}[ \t]+)(.*)$/gm;

  const $ = (id) => document.getElementById(id);
  const els = {
    form: $("ask-form"),
    question: $("question"),
    button: $("ask-button"),
    buttonLabel: document.querySelector("#ask-button .btn-label"),
    questionError: $("question-error"),
    mode: $("mode"),
    topK: $("top-k"),
    chips: Array.from(document.querySelectorAll(".chip")),
    results: $("results"),
    status: $("status"),
    error: $("error"),
    errorTitle: $("error-title"),
    errorDetail: $("error-detail"),
    errorMeta: $("error-meta"),
    answerRegion: $("answer-region"),
    citations: $("citations"),
    citationsTitle: $("citations-title"),
    cards: $("cards"),
    auth: $("auth-panel"),
    authMessage: $("auth-message"),
    apiKey: $("api-key"),
    authForget: $("auth-forget"),
    dialog: $("doc-dialog"),
    docKicker: $("doc-kicker"),
    docTitle: $("doc-title"),
    docMeta: $("doc-meta"),
    docDescription: $("doc-description"),
    docText: $("doc-text"),
    docBody: $("doc-body"),
    docClose: $("doc-close"),
    docJump: $("doc-jump"),
    legend: ["legend-passage-long", "legend-passage-short", "legend-sentence-long", "legend-sentence-short"].map($),
  };

  const state = {
    busy: false,
    lang: "en",
    retry: null, // the action to repeat after an API key is entered
    docCache: new Map(),
    opener: null,
  };

  // ---------------------------------------------------------------- helpers
  function el(tag, props = {}, children = []) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "text") node.textContent = value;
      else if (key === "className") node.className = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of [].concat(children)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function t(key, ...args) {
    const table = STRINGS[state.lang] || STRINGS.en;
    const value = key in table ? table[key] : STRINGS.en[key];
    return typeof value === "function" ? value(...args) : value;
  }

  function getKey() {
    try { return sessionStorage.getItem(KEY_STORAGE) || ""; } catch { return ""; }
  }

  function setKey(value) {
    try {
      if (value) sessionStorage.setItem(KEY_STORAGE, value);
      else sessionStorage.removeItem(KEY_STORAGE);
    } catch { /* storage may be disabled; the key then lasts for this request only */ }
  }

  function isMarkdown(name) {
    return /\.(md|markdown)$/i.test(name || "") || name === "md" || name === "markdown";
  }

  class ApiError extends Error {
    constructor(status, title, detail, extra = {}) {
      super(detail || title);
      this.status = status;
      this.title = title;
      this.detail = detail;
      Object.assign(this, extra);
    }
  }

  async function api(path, options = {}) {
    const headers = { Accept: "application/json, application/problem+json", ...(options.headers || {}) };
    const key = getKey();
    if (key) headers.Authorization = `Bearer ${key}`;
    let response;
    try {
      response = await fetch(path, { ...options, headers });
    } catch (err) {
      throw new ApiError(0, "Cannot reach the service", "Check your connection and try again. (Periksa koneksi Anda.)");
    }
    const type = response.headers.get("content-type") || "";
    let body = null;
    if (type.includes("json")) {
      try { body = await response.json(); } catch { body = null; }
    }
    if (!response.ok) {
      const problem = body && typeof body === "object" ? body : {};
      throw new ApiError(
        response.status,
        typeof problem.title === "string" ? problem.title : `HTTP ${response.status}`,
        typeof problem.detail === "string" ? problem.detail : response.statusText,
        {
          retryAfter: response.headers.get("retry-after"),
          requestId: problem.request_id || response.headers.get("x-request-id"),
        },
      );
    }
    if (body === null) throw new ApiError(response.status, "Unexpected response", "The service did not answer with JSON.");
    return body;
  }

  // ------------------------------------------------------ text with ranges
  /* Renders text into `parent` with character ranges styled. `ranges` are
   * {start, end, cls, tag?} in text offsets; `hidden` ranges are dropped (markdown marks).
   * Nested/overlapping ranges are handled by splitting the text at every boundary. */
  function renderRanges(parent, text, ranges, hidden = []) {
    const cuts = new Set([0, text.length]);
    for (const r of ranges.concat(hidden)) {
      cuts.add(Math.max(0, Math.min(text.length, r.start)));
      cuts.add(Math.max(0, Math.min(text.length, r.end)));
    }
    const points = Array.from(cuts).sort((a, b) => a - b);
    const hiddenSorted = hidden.slice().sort((a, b) => a.start - b.start);
    const frag = document.createDocumentFragment();
    let firstMark = null;
    for (let i = 0; i < points.length - 1; i += 1) {
      const a = points[i];
      const b = points[i + 1];
      if (a === b) continue;
      if (hiddenSorted.some((h) => h.start <= a && b <= h.end)) continue;
      const active = ranges.filter((r) => r.start <= a && b <= r.end);
      const piece = text.slice(a, b);
      if (!active.length) {
        frag.append(document.createTextNode(piece));
        continue;
      }
      const isMark = active.some((r) => r.tag === "mark");
      const node = document.createElement(isMark ? "mark" : "span");
      node.className = active.map((r) => r.cls).filter(Boolean).join(" ");
      node.textContent = piece;
      if (isMark && !firstMark) firstMark = node;
      frag.append(node);
    }
    parent.append(frag);
    return firstMark;
  }

  function markdownHidden(text, withHeadings) {
    const hidden = [];
    for (const m of text.matchAll(EMPHASIS)) hidden.push({ start: m.index, end: m.index + m[0].length });
    const headings = [];
    if (withHeadings) {
      for (const m of text.matchAll(HEADING)) {
        hidden.push({ start: m.index, end: m.index + m[1].length });
        headings.push({ start: m.index + m[1].length, end: m.index + m[0].length, cls: "md-heading" });
      }
    }
    return { hidden, headings };
  }

  function wordBoundary(text, index, direction) {
    // Move `index` to the nearest whitespace in `direction` (-1 or +1), at most 40 characters.
    for (let i = 0; i < 40; i += 1) {
      const j = index + direction * i;
      if (j <= 0 || j >= text.length) return Math.max(0, Math.min(text.length, j));
      if (/\s/.test(text[j])) return direction > 0 ? j : j + 1;
    }
    return index;
  }

  // ------------------------------------------------------------ rendering
  function clearResults() {
    els.error.hidden = true;
    els.answerRegion.replaceChildren();
    els.cards.replaceChildren();
    els.citations.hidden = true;
    els.status.textContent = "";
  }

  function setBusy(busy, message) {
    state.busy = busy;
    els.button.disabled = busy;
    els.button.classList.toggle("is-loading", busy);
    els.buttonLabel.textContent = busy ? "Searching…" : "Ask";
    els.results.setAttribute("aria-busy", busy ? "true" : "false");
    for (const chip of els.chips) chip.disabled = busy;
    document.body.classList.toggle("is-busy", busy);
    if (busy) {
      els.status.replaceChildren(
        el("span", { className: "status-line" }, [
          el("span", { className: "spinner spinner-dark", "aria-hidden": "true" }),
          message || "Searching the sources… · Mencari di sumber…",
        ]),
      );
      els.answerRegion.replaceChildren(skeleton());
    } else {
      els.status.textContent = "";
    }
  }

  function skeleton() {
    return el("div", { className: "skeleton", "aria-hidden": "true" }, [
      el("div", { className: "skeleton-line w-90" }),
      el("div", { className: "skeleton-line w-75" }),
      el("div", { className: "skeleton-line w-40" }),
    ]);
  }

  function renderAnswer(data) {
    state.lang = data.lang === "id" ? "id" : "en";
    const citations = Array.isArray(data.citations) ? data.citations : [];
    const known = new Set(citations.map((c) => c.marker));

    const block = el("article", {
      className: `answer${data.abstained ? " answer-abstained" : ""}`,
      lang: state.lang,
      "data-abstained": data.abstained ? "true" : "false",
      id: "answer",
    });

    if (data.abstained) {
      block.append(
        el("div", { className: "answer-head" }, [
          el("span", { className: "answer-icon", "aria-hidden": "true", text: "?" }),
          el("h3", { className: "answer-title", text: t("notCovered") }),
        ]),
        el("p", { className: "answer-text", id: "answer-text", text: data.answer }),
        el("p", { className: "answer-hint", text: t("notCoveredHint") }),
      );
    } else {
      const text = el("p", { className: "answer-text", id: "answer-text" });
      // Split "sentence [1] sentence [2]" into text and marker links.
      const parts = String(data.answer).split(/(\[\d+\])/);
      for (const part of parts) {
        const m = /^\[(\d+)\]$/.exec(part);
        if (m && known.has(Number(m[1]))) {
          const n = Number(m[1]);
          text.append(
            el("a", {
              className: "cite-ref",
              href: `#cite-${n}`,
              "aria-label": t("jumpTo", n),
              "data-marker": n,
              text: `[${n}]`,
              onclick: (event) => { event.preventDefault(); focusCard(n); },
            }),
          );
        } else if (part) {
          text.append(document.createTextNode(part.replace(/\s+$/, " ")));
        }
      }
      block.append(
        el("div", { className: "answer-head" }, [
          el("h3", { className: "answer-title", text: t("answer") }),
        ]),
        text,
      );
    }

    const meta = [];
    if (!data.abstained && typeof data.confidence === "number") {
      meta.push(`${t("confidence")} ${Math.round(data.confidence * 100)}%`);
    }
    if (data.mode) meta.push(`${t("mode")}: ${data.mode}`);
    const total = data.timings_ms && data.timings_ms.total;
    if (typeof total === "number") meta.push(`${t("took")} ${(total / 1000).toFixed(total < 1000 ? 2 : 1)} s`);
    if (meta.length) block.append(el("p", { className: "answer-meta", text: meta.join(" · ") }));

    els.answerRegion.replaceChildren(block);

    els.citationsTitle.textContent = data.abstained ? t("closest") : t("sources", citations.length);
    els.cards.replaceChildren(...citations.map((c) => renderCard(c, data.abstained)));
    els.cards.classList.toggle("cards-abstained", Boolean(data.abstained));
    els.citations.hidden = citations.length === 0;
  }

  function renderCard(c, abstained) {
    const n = c.marker;
    const text = String(c.text || "");
    const base = Number(c.start) || 0;
    const hl = c.highlight || { start: base, end: base };
    const hs = Math.max(0, Math.min(text.length, hl.start - base));
    const he = Math.max(hs, Math.min(text.length, hl.end - base));

    const ranges = [{ start: hs, end: he, cls: "hl", tag: "mark" }];
    // Collapse long context around the highlighted sentence (expandable).
    let collapsible = false;
    const ctx = contextChars();
    const headCut = hs > ctx + 60 ? wordBoundary(text, hs - ctx, 1) : 0;
    const tailCut = text.length - he > ctx + 60 ? wordBoundary(text, he + ctx, -1) : text.length;
    if (headCut > 0) { ranges.push({ start: 0, end: headCut, cls: "ctx-far" }); collapsible = true; }
    if (tailCut < text.length) { ranges.push({ start: tailCut, end: text.length, cls: "ctx-far" }); collapsible = true; }

    const md = isMarkdown(c.source);
    const { hidden } = md ? markdownHidden(text, false) : { hidden: [] };

    const passage = el("blockquote", { className: "passage", lang: c.lang || null, cite: `/v1/documents/${encodeURIComponent(c.doc_id)}` });
    const body = el("p", { className: "passage-text" });
    if (headCut > 0) body.append(el("span", { className: "ellipsis", "aria-hidden": "true", text: "… " }));
    renderRanges(body, text, ranges, hidden);
    if (tailCut < text.length) body.append(el("span", { className: "ellipsis", "aria-hidden": "true", text: " …" }));
    passage.append(body);

    const sourceBits = [el("span", { className: "source-file", text: c.source })];
    if (c.section) sourceBits.push(el("span", { className: "source-section" }, [`${t("section")}: `, c.section]));
    if (c.lang) sourceBits.push(el("span", { className: "lang-badge", title: (t("lang")[c.lang] || c.lang), text: String(c.lang).toUpperCase() }));

    const actions = el("div", { className: "card-actions" });
    const openBtn = el("button", {
      type: "button",
      className: "btn btn-secondary btn-small open-doc",
      "data-action": "open-document",
      "aria-label": `${t("open")}: ${c.title}`,
      onclick: (event) => openDocument(c, event.currentTarget),
    }, [el("span", { className: "btn-icon-doc", "aria-hidden": "true" }), t("open")]);
    actions.append(openBtn);
    if (collapsible) {
      const toggle = el("button", {
        type: "button",
        className: "btn btn-quiet btn-small toggle-passage",
        "aria-expanded": "false",
        text: t("showFull"),
        onclick: () => {
          const expanded = card.classList.toggle("is-expanded");
          toggle.setAttribute("aria-expanded", expanded ? "true" : "false");
          toggle.textContent = expanded ? t("showLess") : t("showFull");
        },
      });
      actions.append(toggle);
    }

    const ranks = c.ranks && typeof c.ranks === "object"
      ? Object.entries(c.ranks).map(([k, v]) => `${k} ${v === null ? "–" : `#${v}`}`).join(" · ")
      : "";
    const details = el("details", { className: "why" }, [
      el("summary", { text: t("why") }),
      el("p", {}, [
        `${t("score")} ${typeof c.score === "number" ? c.score.toFixed(4) : "?"}`,
        ranks ? ` · ${t("rank")}: ${ranks}` : "",
        ` · ${c.chunk_id} · ${t("chars")} ${c.start}–${c.end}`,
      ]),
    ]);

    const card = el("li", {
      className: `card${abstained ? " card-abstained" : ""}`,
      id: `cite-${n}`,
      tabindex: "-1",
      "data-marker": n,
      "aria-labelledby": `cite-${n}-title`,
    }, [
      el("header", { className: "card-head" }, [
        el("span", { className: "marker", "aria-label": t("citeLabel", n), text: String(n) }),
        el("div", { className: "card-heading" }, [
          el("h4", { className: "card-title", id: `cite-${n}-title`, text: c.title || c.doc_id }),
          el("p", { className: "card-source" }, sourceBits),
        ]),
      ]),
      passage,
      el("footer", { className: "card-foot" }, [actions, details]),
    ]);
    return card;
  }

  function focusCard(n) {
    const card = document.getElementById(`cite-${n}`);
    if (!card) return;
    const reduce = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    card.scrollIntoView({ behavior: reduce ? "auto" : "smooth", block: "start" });
    card.focus({ preventScroll: true });
    card.classList.remove("flash");
    void card.offsetWidth; // restart the animation
    card.classList.add("flash");
    card.addEventListener("animationend", () => card.classList.remove("flash"), { once: true });
    if (history.replaceState) history.replaceState(history.state, "", `${location.pathname}${location.search}#cite-${n}`);
  }

  function showError(err) {
    const status = err instanceof ApiError ? err.status : 0;
    let title = err.title || "Something went wrong";
    let detail = err.detail || String(err.message || err);
    if (status === 429) {
      const wait = Number(err.retryAfter);
      detail = `${detail}${wait ? ` Try again in ${wait} s. (Coba lagi dalam ${wait} detik.)` : ""}`;
    } else if (status === 503) {
      detail = `${detail} The service may still be starting; try again shortly. (Layanan belum siap.)`;
    }
    els.errorTitle.textContent = status ? `${title} (${status})` : title;
    els.errorDetail.textContent = detail;
    els.errorMeta.textContent = err.requestId ? `Request id: ${err.requestId}` : "";
    els.errorMeta.hidden = !err.requestId;
    els.error.hidden = false;
  }

  function showAuth(err, retry) {
    // A 401 is shown as one panel: the problem's title and detail, and a field for the key.
    state.retry = retry;
    const hadKey = Boolean(getKey());
    els.error.hidden = true;
    els.authMessage.textContent = `${err.title} (${err.status}): ${String(err.detail || "").replace(/\.$/, "")}.${hadKey ? " The saved key was not accepted; enter another one." : ""}`;
    els.authForget.hidden = !hadKey;
    els.auth.hidden = false;
    els.apiKey.value = "";
    els.apiKey.focus();
  }

  // ---------------------------------------------------------------- asking
  async function ask(question, { push = true } = {}) {
    const q = question.trim();
    if (!q) {
      els.questionError.textContent = "Please type a question. · Silakan ketik pertanyaan.";
      els.questionError.hidden = false;
      els.question.setAttribute("aria-invalid", "true");
      els.question.focus();
      return;
    }
    if (state.busy) return;
    els.questionError.hidden = true;
    els.question.removeAttribute("aria-invalid");
    const body = { question: q };
    if (els.mode.value) body.mode = els.mode.value;
    if (els.topK.value) body.top_k = Number(els.topK.value);

    if (push) {
      const url = `${location.pathname}?q=${encodeURIComponent(q)}`;
      if (new URLSearchParams(location.search).get("q") !== q) history.pushState({ q }, "", url);
      else history.replaceState({ q }, "", url);
    }
    document.title = `${q} · Tanya`;

    clearResults();
    setBusy(true);
    try {
      const data = await api("/v1/ask", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      els.auth.hidden = true;
      setBusy(false);
      renderAnswer(data);
    } catch (err) {
      setBusy(false);
      els.answerRegion.replaceChildren();
      if (err instanceof ApiError && err.status === 401) showAuth(err, () => ask(q, { push: false }));
      else showError(err);
    }
  }

  // ------------------------------------------------------------- documents
  async function openDocument(citation, opener) {
    state.opener = opener || null;
    els.docKicker.textContent = t("citeLabel", citation.marker);
    t("legend").forEach((label, i) => { els.legend[i].textContent = label; });
    els.docJump.textContent = t("jump");
    els.docClose.setAttribute("aria-label", t("close"));
    els.docTitle.textContent = citation.title || citation.doc_id;
    els.docMeta.textContent = "Loading… · Memuat…";
    els.docDescription.hidden = true;
    els.docText.replaceChildren(skeleton());
    els.dialog.setAttribute("aria-busy", "true");
    if (!els.dialog.open) els.dialog.showModal();
    els.docClose.focus();

    let doc = state.docCache.get(citation.doc_id);
    try {
      if (!doc) {
        doc = await api(`/v1/documents/${encodeURIComponent(citation.doc_id)}`);
        state.docCache.set(citation.doc_id, doc);
      }
    } catch (err) {
      els.dialog.setAttribute("aria-busy", "false");
      els.docMeta.textContent = "";
      els.docText.replaceChildren(
        el("div", { className: "notice notice-error", role: "alert" }, [
          el("p", { className: "notice-title", text: `${err.title || "Error"}${err.status ? ` (${err.status})` : ""}` }),
          el("p", { className: "notice-text", text: err.detail || "" }),
        ]),
      );
      if (err instanceof ApiError && err.status === 401) {
        els.dialog.close();
        showAuth(err, () => openDocument(citation, opener));
      }
      return;
    }

    els.dialog.setAttribute("aria-busy", "false");
    els.docTitle.textContent = doc.title || doc.doc_id;
    const meta = [doc.source];
    if (doc.kind) meta.push(doc.kind);
    if (doc.date) meta.push(doc.date);
    if (Array.isArray(doc.languages) && doc.languages.length) meta.push(doc.languages.map((l) => l.toUpperCase()).join(" + "));
    els.docMeta.textContent = meta.join(" · ");
    els.docDescription.textContent = doc.description || "";
    els.docDescription.hidden = !doc.description;

    const text = String(doc.text || "");
    const hl = citation.highlight || { start: citation.start, end: citation.end };
    const ranges = [
      { start: citation.start, end: citation.end, cls: "doc-passage" },
      { start: hl.start, end: hl.end, cls: "doc-hl", tag: "mark" },
    ];
    const md = isMarkdown(doc.format) || isMarkdown(doc.source);
    const { hidden, headings } = md ? markdownHidden(text, true) : { hidden: [], headings: [] };
    els.docText.replaceChildren();
    els.docText.setAttribute("lang", doc.lang || "");
    const mark = renderRanges(els.docText, text, ranges.concat(headings), hidden);
    if (mark) mark.id = "doc-highlight";
    requestAnimationFrame(() => scrollToHighlight(false));
  }

  function scrollToHighlight(smooth) {
    const mark = document.getElementById("doc-highlight");
    if (!mark) return;
    mark.scrollIntoView({ block: "center", behavior: smooth ? "smooth" : "auto" });
  }

  // ---------------------------------------------------------------- events
  els.form.addEventListener("submit", (event) => {
    event.preventDefault();
    ask(els.question.value);
  });

  els.question.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      ask(els.question.value);
    }
  });

  els.question.addEventListener("input", () => {
    if (!els.questionError.hidden && els.question.value.trim()) {
      els.questionError.hidden = true;
      els.question.removeAttribute("aria-invalid");
    }
  });

  for (const chip of els.chips) {
    chip.addEventListener("click", () => {
      els.question.value = chip.dataset.question;
      ask(chip.dataset.question);
    });
  }

  els.auth.addEventListener("submit", (event) => {
    event.preventDefault();
    const value = els.apiKey.value.trim();
    if (!value) { els.apiKey.focus(); return; }
    setKey(value);
    els.auth.hidden = true;
    els.error.hidden = true;
    const retry = state.retry;
    state.retry = null;
    if (retry) retry();
  });

  els.authForget.addEventListener("click", () => {
    setKey("");
    els.apiKey.value = "";
    els.authMessage.textContent = "The key was removed from this tab. · Kunci dihapus.";
    els.authForget.hidden = true;
    els.apiKey.focus();
  });

  els.docClose.addEventListener("click", () => els.dialog.close());
  els.docJump.addEventListener("click", () => scrollToHighlight(true));
  els.dialog.addEventListener("click", (event) => {
    if (event.target === els.dialog) els.dialog.close(); // a click on the backdrop
  });
  els.dialog.addEventListener("close", () => {
    document.body.classList.remove("dialog-open");
    if (state.opener && document.contains(state.opener)) state.opener.focus();
  });
  els.dialog.addEventListener("keydown", (event) => {
    // <dialog> closes on Escape by itself; this also covers browsers that only cancel.
    if (event.key === "Escape") { event.preventDefault(); els.dialog.close(); }
  });
  els.dialog.addEventListener("toggle", () => {
    document.body.classList.toggle("dialog-open", els.dialog.open);
  });

  window.addEventListener("popstate", () => {
    const q = new URLSearchParams(location.search).get("q");
    if (q) { els.question.value = q; ask(q, { push: false }); } else { els.question.value = ""; clearResults(); }
  });

  // A shared link (?q=...) asks straight away.
  const initial = new URLSearchParams(location.search).get("q");
  if (initial) {
    els.question.value = initial;
    ask(initial, { push: false });
  }
  document.documentElement.classList.add("js-ready");
})();
