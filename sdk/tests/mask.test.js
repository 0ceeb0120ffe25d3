// createMasker: which forms of a secret value are masked (the value, base64, base64url,
// encodeURIComponent, JSON-escaped, shell-quoted, each line of a multi-line value), the
// 4-character floor, overlapping and nested values, texts without secrets, `reach`, values
// added later; and a LineSplitter with a masker: lines masked before they are cut, an
// unterminated line holding back what may be the start of a value.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MIN_MASKED_LENGTH, createMasker } from '../shared/mask.js';
import { LineSplitter } from '../shared/lines.js';
import { quote } from '../shared/shell.js';

const SECRET = 'p@ss w/rd+"q"=1';

describe('createMasker', () => {
  test('masks the value and its encoded forms', () => {
    const mask = createMasker([SECRET]);
    const base64 = Buffer.from(SECRET).toString('base64');
    for (const form of [
      SECRET,
      base64,
      base64.replace(/=+$/, ''),
      Buffer.from(SECRET).toString('base64url'),
      encodeURIComponent(SECRET),
      JSON.stringify(SECRET).slice(1, -1),
    ]) {
      assert.equal(mask(`before ${form} after`), 'before *** after', form);
    }
    assert.equal(mask(JSON.stringify({ v: SECRET })), '{"v":"***"}');
  });

  test('masks the shell-quoted form a failed $ command shows', () => {
    const value = "it's-a-secret";
    assert.equal(createMasker([value])(`exit 3 # ${quote(value)}`), "exit 3 # '***'");
  });

  test('masks every occurrence in one text', () => {
    const mask = createMasker(['hunter2!']);
    assert.equal(mask('hunter2!/hunter2! and hunter2!'), '***/*** and ***');
  });

  test('masks each line of a multi-line value, trimmed, and the value as a whole', () => {
    const value = '-----BEGIN KEY-----\n  abcdefgh\r\nxy\n-----END KEY-----';
    const mask = createMasker([value]);
    assert.equal(mask('-----BEGIN KEY-----'), '***');
    assert.equal(mask('    abcdefgh'), '    ***');
    assert.equal(mask(`key=${JSON.stringify(value)}`), 'key="***"');
    assert.equal(mask(value), '***');
    assert.equal(mask('xy'), 'xy', 'a line shorter than 4 characters stays');
  });

  test(`values and forms shorter than ${MIN_MASKED_LENGTH} characters are not masked`, () => {
    const mask = createMasker(['abc', '', 'on']);
    assert.equal(mask('abc on '), 'abc on ');
    assert.equal(mask(Buffer.from('abc').toString('base64')), '***', 'the base64 of abc has 4 characters');
  });

  test('a value containing another, and overlapping occurrences, are masked entirely', () => {
    assert.equal(createMasker(['token', 'my-token-123'])('x my-token-123 y'), 'x *** y');
    assert.equal(createMasker(['abcdef', 'defghi'])('<abcdefghi>'), '<***>');
    assert.equal(createMasker(['aaaa'])('aaaaa'), '***');
  });

  test('no secrets, or no match, leaves the text as it is', () => {
    assert.equal(createMasker([])('plain text'), 'plain text');
    assert.equal(createMasker(['s3cr3t-value'])('plain text'), 'plain text');
  });

  test('reach is the length of the longest masked form', () => {
    assert.equal(createMasker([]).reach, 0);
    assert.equal(createMasker(['abc']).reach, 4, 'base64 of abc');
    assert.equal(createMasker(['a b']).reach, 5, "encodeURIComponent('a b')");
  });

  test('add masks more values from then on, also where the masker is already in use', () => {
    const mask = createMasker(['first-secret']);
    const lines = [];
    const splitter = new LineSplitter((line) => lines.push(line), { mask });
    splitter.push('first-secret later-secret\n');
    mask.add(['later-secret-value']);
    splitter.push('first-secret later-secret-value\n');
    assert.deepEqual(lines, ['*** later-secret', '*** ***']);
    assert.equal(mask.reach, Buffer.from('later-secret-value').toString('base64').length);
  });

  test('a LineSplitter masks before it cuts and holds back the end of an unterminated line', () => {
    const lines = [];
    const splitter = new LineSplitter((line) => lines.push(line), { maxLineLength: 8, mask: createMasker(['SECRET']) });
    splitter.push('abcdSECRETxyz\n');
    assert.deepEqual(lines, ['abcd***x', 'yz']);
    lines.length = 0;
    // Cut at 8 without the mask, the first piece would end in 'SEC'.
    splitter.push('12345SEC');
    splitter.push('R');
    assert.deepEqual(lines, [], 'the last 7 characters (the longest form, base64, is 8) may be the start of a form');
    splitter.push('ET6789abcdefgh');
    assert.deepEqual(lines, ['12345***']);
    splitter.end();
    assert.deepEqual(lines, ['12345***', '6789abcd', 'efgh']);
  });
});
