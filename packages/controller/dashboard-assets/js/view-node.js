// @ts-check
/**
 * Views are plain data, turned into DOM by `mount` only. A string child is always a text node and
 * attributes are set one by one, so whatever a device reports (its id, a failure reason) shows as
 * typed and can never become markup: there is no innerHTML anywhere in the dashboard.
 */

/**
 * @typedef {string | number | boolean | Record<string, string> | null | undefined} AttrValue
 * @typedef {{ tag: string, attrs: Record<string, AttrValue>, children: ViewChild[] }} ViewNode
 * @typedef {ViewNode | string} ViewChild
 * @typedef {ViewChild | number | null | undefined | false} ViewLeaf
 * @typedef {ViewLeaf | ViewLeaf[]} ViewInput
 */

/**
 * An element: `h('td', { class: 'num' }, count)`. Null, undefined and false children are left
 * out, numbers become text, arrays are flattened.
 * @param {string} tag
 * @param {Record<string, AttrValue>} [attrs]
 * @param {ViewInput[]} children
 * @returns {ViewNode}
 */
export function h(tag, attrs = {}, ...children) {
  /** @type {ViewChild[]} */
  const kept = [];
  const add = (/** @type {ViewInput} */ child) => {
    if (Array.isArray(child)) child.forEach(add);
    else if (typeof child === 'number') kept.push(String(child));
    else if (child !== null && child !== undefined && child !== false) kept.push(child);
  };
  children.forEach(add);
  return { tag, attrs, children: kept };
}

/**
 * Builds the DOM of a view. `style` is a map applied through the CSSOM, which the page's
 * Content-Security-Policy allows where a style attribute would be refused.
 * @param {ViewChild} node
 * @param {Document} doc
 * @returns {Node}
 */
export function mount(node, doc) {
  if (typeof node === 'string') return doc.createTextNode(visible(node));
  const element = doc.createElement(node.tag);
  for (const [name, value] of Object.entries(node.attrs)) {
    // Handlers are attached in code (one delegated listener), never from a view's attributes.
    if (/^on/i.test(name)) throw new Error(`${name}: event handler attributes are not allowed`);
    if (value === null || value === undefined || value === false) continue;
    if (name === 'style' && typeof value === 'object') {
      for (const [property, text] of Object.entries(value)) {
        /** @type {HTMLElement} */ (element).style.setProperty(property, text);
      }
    } else {
      const text = value === true ? '' : String(value);
      element.setAttribute(name, SHOWN_ATTRIBUTES.has(name) ? visible(text) : text);
    }
  }
  for (const child of node.children) element.append(mount(child, doc));
  return element;
}

/**
 * What text may hold that the page would act on rather than show: controls, lone surrogates,
 * line separators and bidi controls (an override can make `pi-17` read as another id).
 */
const ACTIVE = /[\p{Cc}\p{Cs}\p{Bidi_Control}\u2028\u2029]/gu;
/** Attributes a person reads (tooltips, what a screen reader says); others are matched by code. */
const SHOWN_ATTRIBUTES = new Set(['title', 'aria-label']);

/**
 * Text as it should be read: each character of ACTIVE as an escape (`\x1b`, `\u202e`), as the
 * CLI shows it; newlines and tabs stay (journal lines are shown in a block that keeps them).
 * @param {string} text
 */
export function visible(text) {
  return text.replace(ACTIVE, (char) => {
    if (char === '\n' || char === '\t') return char;
    const code = char.charCodeAt(0);
    return code < 0x20
      ? `\\x${code.toString(16).padStart(2, '0')}`
      : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}
