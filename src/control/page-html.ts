/**
 * HTML building for the status page where escaping is the default: every value put into an
 * `html` template is escaped unless it is itself `Html` built the same way. Node names, peer
 * names and error messages come from configs and peers, so nothing may reach the page raw.
 */

/** Markup that is already safe: made by `html`, `join`, or `Html.trusted` for our own constant text. */
export class Html {
  readonly text: string;

  private constructor(text: string) {
    this.text = text;
  }

  /** Only for text written in this code base (template literals, the stylesheet), never for values. */
  static trusted(text: string): Html {
    return new Html(text);
  }

  toString(): string {
    return this.text;
  }
}

export type HtmlValue = Html | string | number | undefined | null | readonly Html[];

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for an element body or a quoted attribute value. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c] ?? c);
}

function piece(v: HtmlValue): string {
  if (v === undefined || v === null) return '';
  if (v instanceof Html) return v.text;
  if (Array.isArray(v)) return (v as readonly Html[]).map((h) => h.text).join('');
  return escapeHtml(String(v));
}

/** Tagged template: literal parts are trusted, every interpolated value is escaped. */
export function html(strings: TemplateStringsArray, ...values: HtmlValue[]): Html {
  // A template has one more literal part than values, so every part is there.
  let out = strings[0] ?? '';
  values.forEach((v, i) => { out += piece(v) + (strings[i + 1] ?? ''); });
  return Html.trusted(out);
}

/** Joins safe fragments with a separator (text, escaped). */
export function join(parts: readonly Html[], separator = ''): Html {
  return Html.trusted(parts.map((p) => p.text).join(escapeHtml(separator)));
}
