// Secret masking: `createMasker(values)` returns the function every text the runner sends
// (log lines, error texts) goes through, replacing each secret value and the encodings a step
// is likely to print it in with `***`: the value, its base64 (padded and not), base64url,
// `encodeURIComponent` form, JSON-string-escaped form, shell-quoted form (how a failed `$`
// command shows an interpolated value), and each line of a multi-line value on its own (log
// lines are sent one by one). Where forms overlap or touch, the whole covered span
// becomes one `***`, so a value that contains another is masked entirely. Values can be added
// to a masker later (`add`, for a secret a step creates), and everyone holding it masks them too.
// It does not know where texts go (the runner applies it at the one place they leave) and
// cannot catch a value printed in pieces or in an encoding not listed here.

/**
 * Forms shorter than this are not masked: replacing every `on`, `1` or `abc` a log happens to
 * contain would destroy the logs, and so short a value hides little anyway.
 */
export const MIN_MASKED_LENGTH = 4;

export const MASK = '***';

/** The texts that give `value` away, some possibly empty or short (filtered by the caller). */
function formsOf(value) {
  const bytes = Buffer.from(value);
  const forms = [
    value,
    bytes.toString('base64'),
    bytes.toString('base64').replace(/=+$/, ''),
    bytes.toString('base64url'),
    JSON.stringify(value).slice(1, -1),
    // Inside the '...' of shell.js's quote(), which is how a failed command's message shows it.
    value.replaceAll("'", "'\\''"),
  ];
  try {
    forms.push(encodeURIComponent(value));
  } catch {
    // A lone surrogate has no URI form, so it cannot be printed in one either.
  }
  const lines = value.split(/\r?\n/);
  if (lines.length > 1) forms.push(...lines.map((line) => line.trim()));
  return forms;
}

/**
 * @typedef {((text: string) => string) & {reach: number, add: (values: Iterable<string>) => void}}
 *   Masker replaces every occurrence of every form with `***`; `reach` is the length of the
 *   longest form (0 when nothing is masked), so a text cut anywhere but in its last `reach - 1`
 *   characters can be masked before the cut; `add(values)` masks more values from then on
 */

/** The forms of `values` long enough to be masked. */
function maskedForms(values) {
  return [...values].flatMap((value) => formsOf(String(value))).filter((form) => form.length >= MIN_MASKED_LENGTH);
}

/**
 * @param {Iterable<string>} values the secret values
 * @returns {Masker}
 */
export function createMasker(values) {
  let forms = [];
  const mask = (text) => (forms.length === 0 ? text : maskForms(text, forms));
  // One mutable masker rather than a new one per value: StepLogs, LineSplitters and shells
  // already made keep the masker they were given, and must mask what is added later.
  const add = (more) => {
    forms = [...new Set([...forms, ...maskedForms(more)])];
    mask.reach = Math.max(0, ...forms.map((form) => form.length));
  };
  Object.assign(mask, { reach: 0, add });
  add(values);
  return mask;
}

/** `text` with every span covered by an occurrence of a form (overlapping or touching spans merged) as one `***`. */
function maskForms(text, forms) {
  const spans = [];
  for (const form of forms) {
    // Overlapping occurrences count too: `aaaa` in `aaaaa` covers all five characters.
    for (let at = text.indexOf(form); at !== -1; at = text.indexOf(form, at + 1)) spans.push([at, at + form.length]);
  }
  if (spans.length === 0) return text;
  spans.sort((a, b) => a[0] - b[0]);
  let masked = '';
  let copied = 0;
  let [start, end] = spans[0];
  for (const [nextStart, nextEnd] of spans.slice(1)) {
    if (nextStart <= end) {
      end = Math.max(end, nextEnd);
      continue;
    }
    masked += text.slice(copied, start) + MASK;
    copied = end;
    [start, end] = [nextStart, nextEnd];
  }
  return masked + text.slice(copied, start) + MASK + text.slice(end);
}
