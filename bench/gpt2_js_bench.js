// The peer for `tessel bench tokenizer`: the npm gpt-3-encoder JavaScript encoder on the same
// documents (NUL-separated in each file), timed the same way (median of N passes after one
// warm-up pass; the encoder's piece cache is module-level, so later passes reuse it).
//   node bench/gpt2_js_bench.js TOKENIZER_DIR FILE... [--repeat N]
const path = require('path');
const fs = require('fs');
const args = process.argv.slice(2);
const { encode } = require(path.resolve(args[0], 'Encoder.js'));
let repeat = 3;
const files = [];
for (let i = 1; i < args.length; i++) {
  if (args[i] === '--repeat') repeat = parseInt(args[++i]); else files.push(args[i]);
}
let bytes = 0;
const docs = [];
for (const f of files) {
  const buf = fs.readFileSync(f);
  bytes += buf.length;
  for (const d of buf.toString('utf-8').split('\0')) docs.push(d);
}
const times = [];
let tokens = 0;
for (let r = 0; r <= repeat; r++) {
  const t0 = process.hrtime.bigint();
  tokens = 0;
  for (const d of docs) tokens += encode(d).length;
  const dt = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r > 0) times.push(dt);
}
times.sort((a, b) => a - b);
const median = times[Math.floor(times.length / 2)];
console.log(JSON.stringify({ peer: 'gpt-3-encoder-js', node: process.version, documents: docs.length,
  bytes, tokens, seconds: +median.toFixed(4), mb_per_s: +(bytes / median / 1e6).toFixed(3) }));
