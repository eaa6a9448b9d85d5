// The reference for the GPT-2 tokenizer tests: the JavaScript encoder of the npm package
// gpt-3-encoder. Reads UTF-8 documents separated by NUL bytes on stdin and prints each
// document's token ids, one per line, followed by a line "-1". (Documents are encoded one by
// one because the reference concatenates arrays per piece, which is quadratic in the text.)
//   node tests/data/gpt2_reference.js TOKENIZER_DIR < documents
const path = require('path');
const fs = require('fs');
const { encode } = require(path.resolve(process.argv[2], 'Encoder.js'));
const out = [];
for (const doc of fs.readFileSync(0, 'utf-8').split('\0')) {
  for (const id of encode(doc)) out.push(id);
  out.push(-1);
}
process.stdout.write(out.join('\n') + '\n');
