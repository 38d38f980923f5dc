// Event contents that stress canonical serialization: every control character, the characters JSON escapes
// specially, 0x7f, '/', every UTF-8 length, emoji with joiners, empty and very long tags.
export function trickyCases() {
  let controls = '';
  for (let c = 0; c < 0x20; c++) controls += String.fromCharCode(c);
  let bmpSample = '';
  for (let cp = 0x80; cp < 0x10000; cp += 251) {
    if (cp >= 0xd800 && cp <= 0xdfff) continue; // lone surrogates are not UTF-8
    bmpSample += String.fromCodePoint(cp);
  }
  return [
    { name: 'empty', kind: 1, tags: [], content: '' },
    { name: 'controls', kind: 1, tags: [], content: controls },
    { name: 'json-specials', kind: 1, tags: [], content: '"quoted" back\\slash /slash/ \u007f del <script>' },
    { name: 'unicode', kind: 1, tags: [], content: 'héllo wörld € 中文 日本語 한국어 🎉 👩‍👩‍👧 \u{10ffff}' + bmpSample },
    { name: 'line-separators', kind: 1, tags: [], content: 'a\u2028b\u2029c\ufeffd' },
    { name: 'empty-tags', kind: 1, tags: [[], [''], ['e', '']], content: 'x' },
    { name: 'long-tag', kind: 30000, tags: [['d', 'x'.repeat(5000)], ['t', ...Array.from({ length: 200 }, (_, i) => `v${i}`)]], content: 'long' },
    { name: 'tag-escapes', kind: 1, tags: [['t', 'tab\there', 'nl\nthere', 'quote"', 'nul\u0000']], content: 'tags' },
    { name: 'large-kind', kind: 65535, tags: [['p', 'f'.repeat(64)]], content: 'max kind' },
    { name: 'long-content', kind: 1, tags: [], content: 'lorem ipsum '.repeat(8000) },
  ];
}
